"""Every 2xx JSON answer a service test receives must validate against its operation's schema.

``running`` (tests/service_support.py) hooks :class:`ResponseChecker` into the client of
each service suite, so every real response recorded over HTTP there is checked against
the service's own OpenAPI document with jsonschema: a documented response model that
drifts from what the route answers fails the suite that exercised the route.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi import FastAPI
from jsonschema import Draft202012Validator

_DOCUMENTS: dict[str, dict[str, Any]] = {}
"""Each service's document by app title, built once per test process (~150 ms of CPU each)."""
_VALIDATORS: dict[tuple[str, str, str, str], Draft202012Validator | None] = {}


class ResponseChecker:
    """Validates responses against ``app``'s OpenAPI document; counts what it checked."""

    def __init__(self, app: FastAPI) -> None:
        if app.title not in _DOCUMENTS:
            _DOCUMENTS[app.title] = app.openapi()
        self.title = app.title
        self.doc = _DOCUMENTS[app.title]
        self.checked: list[tuple[str, str, int]] = []
        self._paths = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path)
                       for path in self.doc["paths"]]

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        """The document's template for ``path`` and its operation; a literal path wins."""
        templates = [t for pattern, t in self._paths if pattern.match(path)]
        templates.sort(key=lambda t: t.count("{"))
        for template in templates:
            op = self.doc["paths"][template].get(method.lower())
            if op is not None:
                return template, op
        return None

    def validator(self, method: str, path: str, status: int) -> Draft202012Validator | None:
        found = self.operation(method, path)
        if found is None:
            return None
        template, op = found
        key = (self.title, method, template, str(status))
        if key not in _VALIDATORS:
            response = op["responses"].get(str(status)) or {}
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            _VALIDATORS[key] = Draft202012Validator(
                {**schema, "components": self.doc["components"]}) if schema else None
        return _VALIDATORS[key]

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        validator = self.validator(method, path, status)
        if validator is None:
            return
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, (f"{method} {path} {status}: the answer does not match its OpenAPI schema: "
                            + "; ".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                                        for e in errors[:5]))
        self.checked.append((method, path, status))

    async def __call__(self, response: httpx.Response) -> None:
        """An httpx response hook."""
        if not 200 <= response.status_code < 300:
            return
        if not response.headers.get("content-type", "").startswith("application/json"):
            return
        await response.aread()
        self.check(response.request.method, response.request.url.path, response.status_code,
                   response.json())
