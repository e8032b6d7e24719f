"""Role gates and command routes are one-level dependencies, and the document still says it all.

FastAPI solves every level of a route's dependency tree on every request (its
parameters, cache key and scopes); ``require(...)``, ``Command`` and ``IdempotentCommand``
take the request alone and work the caller out once per request (``principal_of``).
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Header, Response
from fastapi.routing import APIRoute, iter_route_contexts

from libs.runtime.auth import Principal, require
from libs.runtime.http import create_app
from libs.runtime.idempotency import Command, IdempotentCommand
from services.orders.app import SPEC as ORDERS


def _levels(dependant: object) -> int:
    children = getattr(dependant, "dependencies", [])
    return 1 + max((_levels(child) for child in children), default=0)


def test_place_order_has_a_flat_dependency_tree_and_no_declared_header() -> None:
    app = create_app(title="o2c orders", routers=ORDERS.routers(None))  # type: ignore[arg-type]
    route = next(r.original_route for r in _contexts(app)
                 if getattr(r.original_route, "path", "") == "/v1/orders" and "POST" in r.methods)
    assert isinstance(route, APIRoute)
    assert _levels(route.dependant) == 2  # the route and its dependencies, nothing below them
    assert all(not d.header_params for d in route.dependant.dependencies)


def _contexts(app: FastAPI) -> list[Any]:
    return list(iter_route_contexts(app.routes))


def test_a_taken_header_is_documented_as_fastapi_documents_a_declared_one() -> None:
    declared = APIRouter()

    @declared.post("/declared")
    async def with_header(key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> None:
        return None

    taken = APIRouter()

    @taken.post("/taken")
    async def keyed(_: Annotated[Principal, Depends(require("admin"))],
                    command: IdempotentCommand) -> None:
        return None

    @taken.post("/plain")
    async def plain(command: Command) -> None:
        return None

    document = create_app(title="t", routers=[declared, taken]).openapi()
    header = [p for p in document["paths"]["/declared"]["post"]["parameters"] if p["in"] == "header"]
    assert [p for p in document["paths"]["/taken"]["post"]["parameters"] if p["in"] == "header"] == header
    assert "parameters" not in document["paths"]["/plain"]["post"]


class _Ring:
    calls = 0

    def authenticate(self, secret: str) -> Principal | None:
        _Ring.calls += 1
        return Principal("k1", "sales") if secret == "s3cret" else None


async def test_the_caller_is_worked_out_once_per_request() -> None:
    router = APIRouter()
    seen: dict[str, object] = {}

    @router.post("/v1/things", status_code=201)
    async def make(principal: Annotated[Principal, Depends(require("sales"))],
                   command: IdempotentCommand) -> Response:
        seen.update(principal=principal, command_principal=command.principal, key=command.key)
        return Response(status_code=201)

    app = create_app(title="t", routers=[router])
    app.state.keyring = _Ring()
    app.state.ctx = None
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        ok = await client.post("/v1/things", headers={"Authorization": "Bearer s3cret",
                                                      "Idempotency-Key": "k-1"})
        refused = await client.post("/v1/things", headers={"Authorization": "Bearer nope"})
        missing = await client.post("/v1/things")
    assert ok.status_code == 201 and _Ring.calls == 2  # the gate and the command shared one look-up
    assert seen["principal"] is seen["command_principal"] and seen["key"] == "k-1"
    assert refused.status_code == 401 and missing.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
