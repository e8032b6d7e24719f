"""The OpenAPI document an integrator reads: bearer auth, problem+json errors, readable ids.

FastAPI's default document has no security scheme (Swagger UI shows no Authorize
button), documents errors as its own 422 shape, which the services never send, and
names operations ``place_order_v1_orders_post``. This module rewrites it once per app:

- a ``bearer`` security scheme, required by every operation (``/health``, ``/ready``,
  ``/metrics`` and ``/asyncapi.json`` are outside the document);
- the ``Problem`` schema (RFC 9457, ``application/problem+json``) on every error an
  operation can answer: 401, 403 and 422 everywhere, 404 where the path names a
  record, 409 on writes, 503 (with ``Retry-After``) everywhere;
- ``operationId`` = the route function's name (``place_order``), unique in the service;
- a description on every property of the public models: its own, else the glossary's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from libs.runtime.openapi_glossary import GLOSSARY

PROBLEM: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An error, as RFC 9457 problem details (media type application/problem+json).",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "A URI naming the kind of problem; stable, "
                 "so clients can branch on it.", "examples": ["https://o2c.example/problems/validation"]},
        "title": {"type": "string", "description": "A short summary of the kind of problem."},
        "status": {"type": "integer", "description": "The HTTP status."},
        "detail": {"type": "string", "description": "What went wrong with this request."},
        "errors": {
            "type": "array", "description": "For 422: every invalid field.",
            "items": {"type": "object", "properties": {
                "field": {"type": "string"}, "message": {"type": "string"}, "type": {"type": "string"}}},
        },
    },
    "additionalProperties": True,
}

_WHY = {
    "401": "No key, or an unknown or revoked one.",
    "403": "The key's role may not do this, or the record belongs to another partner.",
    "404": "No such record (or not one this key may see).",
    "409": "The request conflicts with the record's state, or the Idempotency-Key was used "
           "with a different body.",
    "422": "Invalid input: the problem lists each invalid field.",
    "503": "A dependency is briefly unreachable; send the same request again after Retry-After.",
}


def _problem_response(status: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _WHY[status],
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status == "503":
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                               "description": "Seconds to wait."}}
    return response


_Call = TypeVar("_Call", bound=Callable[..., Any])
_HEADERS = "__o2c_headers__"


def takes_header(name: str) -> Callable[[_Call], _Call]:
    """Mark a dependency that reads the optional text header ``name`` itself (not through a
    ``Header(...)`` parameter, which FastAPI validates on every request): the document lists
    it on every operation using the dependency, as FastAPI lists a declared header."""

    def mark(call: _Call) -> _Call:
        setattr(call, _HEADERS, (*getattr(call, _HEADERS, ()), name))
        return call

    return mark


def _headers_read(dependant: Dependant) -> Iterator[str]:
    for dependency in dependant.dependencies:
        yield from getattr(dependency.call, _HEADERS, ())
        yield from _headers_read(dependency)


def _document_headers(schema: dict[str, Any], routes: Any) -> None:
    """The headers of :func:`takes_header` dependencies, after the operation's own parameters."""
    for context in iter_route_contexts(routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        route: Any = context  # an APIRoute as included (its path with the router's prefix)
        if not route.include_in_schema:
            continue
        names = list(dict.fromkeys(_headers_read(route.dependant)))
        operations = schema.get("paths", {}).get(route.path_format, {})
        for method in route.methods:
            operation = operations.get(method.lower())
            if operation is None or not names:
                continue
            parameters = operation.setdefault("parameters", [])
            for name in names:
                if not any(p["in"] == "header" and p["name"] == name for p in parameters):
                    parameters.append({"name": name, "in": "header", "required": False, "schema": {
                        "anyOf": [{"type": "string"}, {"type": "null"}], "title": name}})


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, built once (FastAPI caches it on ``app.openapi_schema``)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    _document_headers(schema, app.routes)
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http", "scheme": "bearer",
        "description": "An API key issued by an admin (`o2c keys create`); its role decides "
                       "what it may do, and a partner key sees only its own partner's data."}
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    for name, model in schemas.items():
        describe_fields(name, model)
    restore_examples(schemas)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            operation["operationId"] = route_name(operation["operationId"], path, method)
            operation["security"] = [{"bearer": []}]
            responses = operation.setdefault("responses", {})
            wanted = ["401", "403", "422", "503"]
            if "{" in path:
                wanted.append("404")
            if method in {"post", "put", "patch", "delete"}:
                wanted.append("409")
            for status in wanted:
                responses[status] = _problem_response(status)
    app.openapi_schema = schema
    return schema


def describe_fields(model_name: str, model: dict[str, Any]) -> None:
    """Give each property of ``model`` a description: the model's own (a nullable field's is on
    its non-null branch, lifted here), else the glossary's (``libs.runtime.openapi_glossary``)."""
    for field, prop in model.get("properties", {}).items():
        if prop.get("description"):
            continue
        branches = [b.get("description") for b in prop.get("anyOf", []) if b.get("description")]
        text = branches[0] if branches else GLOSSARY.get(f"{model_name}.{field}", GLOSSARY.get(field))
        if text:
            prop["description"] = text


def _models(base: type[BaseModel] = BaseModel) -> list[type[BaseModel]]:
    found = []
    for cls in base.__subclasses__():
        found += [cls, *_models(cls)]
    return found


def restore_examples(schemas: dict[str, Any]) -> None:
    """Put back the ``null`` values of the models' examples (``json_schema_extra``): FastAPI
    drops every ``None`` from the document it builds, which left the examples missing required
    nullable fields. A schema gets the examples of the model of its name and fields."""
    for cls in _models():
        extra = cls.model_config.get("json_schema_extra")
        schema = schemas.get(cls.__name__)
        if not isinstance(extra, dict) or "examples" not in extra or schema is None:
            continue
        fields = {field.alias or name for name, field in cls.model_fields.items()}
        if fields == set(schema.get("properties", {})):
            schema["examples"] = extra["examples"]


def route_name(generated: str, path: str, method: str) -> str:
    """The route function's name inside FastAPI's generated id (``name + path + _method``)."""
    suffix = re.sub(r"\W", "_", path) + f"_{method}"
    return generated.removesuffix(suffix) if generated.endswith(suffix) else generated


def answers(model: type[BaseModel]) -> dict[str, Any]:
    """Route keywords documenting ``model`` as the 200 answer of a route that returns the stored
    document as it is (no ``response_model``: nothing is re-validated or filtered on the way out).
    The service suites check every such answer against the schema (tests/openapi_responses.py)."""
    return {"response_model": None, "responses": {200: {"model": model}}}


def install(app: FastAPI) -> None:
    """Serve :func:`document` as the app's ``/openapi.json``, and the docs page behind the gateway."""
    app.openapi = lambda: document(app)  # type: ignore[method-assign]
    app.add_middleware(DocsBehindGateway)


_DOCS_PREFIX = re.compile(rb"/docs/[a-z]+")


class DocsBehindGateway:
    """The docs page as the gateway serves it under ``/docs/<service>/``: its ``openapi.json`` and
    assets are linked below the ``X-Forwarded-Prefix`` the gateway sends (deploy/gateway.conf).

    Only the page's own links move (the document keeps no ``servers``, so "Try it out" still
    calls ``/v1/...`` on the same host); a prefix of any other shape is ignored.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/docs":
            prefix = next((value for name, value in scope["headers"] if name == b"x-forwarded-prefix"),
                          None)
            if prefix is not None and _DOCS_PREFIX.fullmatch(prefix):
                scope = {**scope, "root_path": prefix.decode()}
        await self.app(scope, receive, send)
