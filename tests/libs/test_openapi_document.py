"""What an integrator reads in each service's OpenAPI document, and the docs page offline."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from libs.runtime.settings import DEFAULT_PORTS
from o2c.apps import service_app

SERVICES = list(DEFAULT_PORTS)


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


@pytest.mark.parametrize("name", SERVICES)
def test_every_operation_names_its_key_and_its_problems(name: str) -> None:
    doc = service_app(name).openapi()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearer"][
            "description"]}
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for method, path, op in operations(doc):
        assert op["security"] == [{"bearer": []}], (method, path)
        wanted = {"401", "403", "422", "503"} | ({"404"} if "{" in path else set()) | (
            {"409"} if method != "get" else set())
        assert wanted <= set(op["responses"]), (method, path)
        for status in wanted:
            content = op["responses"][status]["content"]
            assert content == {"application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"}}}, (method, path, status)


@pytest.mark.parametrize("name", SERVICES)
def test_operation_ids_are_the_route_names(name: str) -> None:
    ids = [op["operationId"] for _, _, op in operations(service_app(name).openapi())]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) and "_v1_" not in i for i in ids), ids


def test_the_orders_document_reads_as_a_guide() -> None:
    doc = service_app("orders").openapi()
    place = doc["paths"]["/v1/orders"]["post"]
    assert place["operationId"] == "place_order"
    assert place["responses"]["503"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}


async def test_the_docs_page_loads_nothing_from_outside() -> None:
    app = service_app("orders")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://o2c") as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(
            r"url: '([^']+)'", page.text)
        assert sources and all(s.startswith("/") for s in sources), sources
        for source in sources:
            assert (await client.get(source)).status_code == 200, source


@pytest.mark.parametrize(("prefix", "openapi"), [
    ("/docs/orders", "/docs/orders/openapi.json"),
    ("/docs/orders'><script>", "/openapi.json"),
    ("/elsewhere", "/openapi.json"),
])
async def test_the_docs_page_links_below_the_gateways_prefix_only_of_its_shape(prefix: str, openapi: str
                                                                                ) -> None:
    app = service_app("orders")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://o2c") as client:
        page = await client.get("/docs", headers={"X-Forwarded-Prefix": prefix})
        assert re.findall(r"url: '([^']+)'", page.text) == [openapi]
        assert "<script>'" not in page.text and "servers" not in (await client.get(
            "/openapi.json", headers={"X-Forwarded-Prefix": prefix})).json()
