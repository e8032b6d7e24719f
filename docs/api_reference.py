"""Regenerate the route tables of ``docs/api.md`` from the services themselves.

Each service's app is built the way ``libs.runtime.host`` builds it (nothing is
started, no database is opened). For every route the table gives the method and
path, the roles its ``require(...)`` gate admits (read from the gate itself, so
it cannot drift from the code), the request body and query parameters from
OpenAPI, whether it takes ``Idempotency-Key``, and the success status and
response model. The response models are listed once, at the end.

    .venv/bin/python docs/api_reference.py          # rewrite the generated parts of docs/api.md
    .venv/bin/python docs/api_reference.py --check  # exit 1 when docs/api.md is out of date

Only the text between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``
is rewritten; everything else in the file is written by hand.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from libs.runtime.auth import ALL_ROLES, STAFF, authenticate
from libs.runtime.settings import DEFAULT_PORTS
from o2c.apps import service_app

DOC = Path(__file__).with_name("api.md")

ROLES_CHECKED_IN_HANDLER: Mapping[tuple[str, str], str] = {
    ("GET", "/dashboard"): "services.projections.api.dashboard:ROLES",
    ("GET", "/dashboard/sign-in"): "services.projections.api.dashboard:ROLES",
    ("POST", "/dashboard/sign-in"): "services.projections.api.dashboard:ROLES",
    ("POST", "/dashboard/sign-out"): "services.projections.api.dashboard:ROLES",
    ("GET", "/dashboard/partners/{partner_id}"): "services.projections.api.dashboard:ROLES",
    ("GET", "/dashboard/export/{file_name}"): "services.projections.api.dashboard:ROLES",
}
"""Routes that check the role in their body rather than through a dependency (a browser page
signs in with a key posted once, then carries a session cookie); the value names the tuple
of roles it admits."""


# -- building the apps -------------------------------------------------------------


# -- roles -------------------------------------------------------------------------


def _gates(dependant: Dependant) -> Iterator[tuple[str, ...]]:
    """The role tuples of every ``require(...)`` gate (or bare authentication) a route depends on."""
    for dependency in dependant.dependencies:
        call = dependency.call
        if getattr(call, "__qualname__", "") == "require.<locals>.dependency":
            yield tuple(inspect.getclosurevars(call).nonlocals["roles"])
        elif call is authenticate:
            yield ALL_ROLES
        else:
            yield from _gates(dependency)


def _handler_roles(method: str, path: str) -> tuple[str, ...] | None:
    target = ROLES_CHECKED_IN_HANDLER.get((method, path))
    if target is None:
        return None
    module, _, attribute = target.partition(":")
    return tuple(getattr(importlib.import_module(module), attribute))


def roles_of(route: APIRoute, method: str) -> str:
    gates = list(_gates(route.dependant))
    admitted: set[str] | None = None
    for gate in gates:
        admitted = set(gate) if admitted is None else admitted & set(gate)
    if admitted is None:
        checked = _handler_roles(method, route.path)
        if checked is None:  # every documented route takes a key: a gate this script cannot read
            raise SystemExit(f"{method} {route.path}: no require(...) gate found; "
                             "teach docs/api_reference.py how this route checks its key")
        admitted = set(checked)
    if admitted == set(ALL_ROLES):
        return "any key"
    if admitted == set(STAFF):
        return "staff"
    return ", ".join(role for role in ALL_ROLES if role in admitted)


# -- schemas -----------------------------------------------------------------------


class Schemas:
    """Renders JSON schemas of one OpenAPI document compactly: ``a, b?, c[{d, e}]``."""

    def __init__(self, openapi: Mapping[str, Any]) -> None:
        self._components = openapi.get("components", {}).get("schemas", {})

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in schema:
            schema = self._components[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    @staticmethod
    def ref_name(schema: Mapping[str, Any]) -> str | None:
        ref = schema.get("$ref")
        return ref.rsplit("/", 1)[-1] if ref else None

    def _without_null(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        options = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
        return options[0] if len(options) == 1 else schema

    def field(self, schema: Mapping[str, Any]) -> str:
        """What follows a field's name: ``(a/b)`` for enums, ``{...}`` for objects, ``[...]`` for lists."""
        schema = self.resolve(self._without_null(schema))
        if "enum" in schema:
            return " (" + "/".join(str(value) for value in schema["enum"]) + ")"
        if "const" in schema:
            return f" ({schema['const']})"
        if schema.get("type") == "array":
            inner = self.resolve(self._without_null(schema.get("items", {})))
            if inner.get("type") == "object" and inner.get("properties"):
                return "[{" + self.fields(inner) + "}]"
            return "[]" + self.field(inner)
        if schema.get("type") == "object" and schema.get("properties"):
            return "{" + self.fields(schema) + "}"
        return ""

    def fields(self, schema: Mapping[str, Any]) -> str:
        schema = self.resolve(schema)
        required = set(schema.get("required", ()))
        return ", ".join(
            f"{name}{'' if name in required else '?'}{self.field(sub)}"
            for name, sub in schema.get("properties", {}).items())

    def names(self, schema: Mapping[str, Any]) -> str:
        """Top-level field names only (for response models)."""
        return ", ".join(self.resolve(schema).get("properties", {}))


# -- one table row per operation ---------------------------------------------------


def _request(operation: Mapping[str, Any], schemas: Schemas) -> str:
    parts = []
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    if body:
        rendered = schemas.fields(body["schema"])
        optional = "" if operation["requestBody"].get("required") else " (optional body)"
        parts.append(("`{" + rendered + "}`" if rendered else "`{}`") + optional)
    query = [p for p in operation.get("parameters", ()) if p["in"] == "query"]
    if query:
        parts.append("query: " + ", ".join(
            f"`{p['name']}{'' if p.get('required') else '?'}{schemas.field(p.get('schema', {}))}`"
            for p in query))
    return "<br>".join(parts) or "—"


def _answer(operation: Mapping[str, Any], schemas: Schemas) -> str:
    status = next(code for code in operation["responses"] if code[0] in "23")  # 303: a redirect
    content = operation["responses"][status].get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is None:
        kind = next(iter(content), "")
        return f"{status}" + (f" `{kind}`" if kind else "")
    name = schemas.ref_name(schema)
    if name is None:
        return f"{status} untyped"
    resolved = schemas.resolve(schema)
    props = resolved.get("properties", {})
    if set(props) == {"items", "next_cursor"}:
        item = schemas.ref_name(props["items"].get("items", {}))
        return f"{status} page of `{item}`" if item else f"{status} `{name}`"
    return f"{status} `{name}`"


def _idempotent(operation: Mapping[str, Any]) -> str:
    headers = {p["name"] for p in operation.get("parameters", ()) if p["in"] == "header"}
    return "yes" if "Idempotency-Key" in headers else ""


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """The app's operations in order; included routers are walked whether FastAPI flattened
    them at include time (older releases) or keeps them as branches (``original_router``)."""
    for route in routes:
        if isinstance(route, APIRoute):
            if route.include_in_schema:
                yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from api_routes(included.routes)


def route_table(app: FastAPI) -> str:
    openapi = app.openapi()
    schemas = Schemas(openapi)
    rows = ["| Method | Path | Roles | Request | Idempotency-Key | Answer |",
            "|---|---|---|---|---|---|"]
    for route in api_routes(app.routes):
        for method in sorted(route.methods):
            operation = openapi["paths"][route.path_format][method.lower()]
            rows.append(f"| {method} | `{route.path_format}` | {roles_of(route, method)} | "
                        f"{_request(operation, schemas)} | {_idempotent(operation)} | "
                        f"{_answer(operation, schemas)} |")
    return "\n".join(rows)


def response_models(apps: Mapping[str, FastAPI]) -> str:
    """Every response model the route tables name, once, with its fields."""
    found: dict[str, tuple[str, str]] = {}
    for service, app in apps.items():
        openapi = app.openapi()
        schemas = Schemas(openapi)
        for operations in openapi["paths"].values():
            for operation in operations.values():
                for code, response in operation["responses"].items():
                    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                    name = schemas.ref_name(schema)
                    if not code.startswith("2") or name is None:
                        continue
                    props = schemas.resolve(schema).get("properties", {})
                    if set(props) == {"items", "next_cursor"}:
                        schema = props["items"].get("items", {})
                        name = schemas.ref_name(schema) or name
                    found.setdefault(name, (service, schemas.fields(schema)))
    rows = ["| Model | Service | Fields (`?`: may be absent or null) |", "|---|---|---|"]
    rows += [f"| `{name}` | {service} | `{fields}` |" for name, (service, fields) in sorted(found.items())]
    return "\n".join(rows)


# -- the document ------------------------------------------------------------------


def generated_parts() -> dict[str, str]:
    apps = {name: service_app(name) for name in DEFAULT_PORTS}
    parts = {f"routes:{name}": route_table(app) for name, app in apps.items()}
    parts["response-models"] = response_models(apps)
    return parts


def render(text: str, parts: Mapping[str, str]) -> str:
    for name, body in parts.items():
        tag = re.escape(name)
        pattern = re.compile(rf"(<!-- generated:{tag} -->\n).*?(<!-- /generated:{tag} -->)", re.DOTALL)
        if not pattern.search(text):
            raise SystemExit(f"{DOC}: no <!-- generated:{name} --> block")
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/api.md is out of date")
    args = parser.parse_args(argv)
    current = DOC.read_text(encoding="utf-8")
    wanted = render(current, generated_parts())
    if args.check:
        if wanted != current:
            print(f"{DOC} is out of date: run .venv/bin/python docs/api_reference.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
