"""What an integrator reads in each service's OpenAPI document, and the docs page offline."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from libs.runtime.settings import DEFAULT_PORTS
from o2c.apps import service_app
from tests.openapi_responses import ResponseChecker

SERVICES = list(DEFAULT_PORTS)


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def model_of(doc: dict[str, Any], schema: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The component a ``$ref`` schema names (``None`` for an inline schema)."""
    ref = schema.get("$ref", "")
    name = ref.removeprefix("#/components/schemas/")
    return (name, doc["components"]["schemas"][name]) if ref else None


MIN_DESCRIBED = 0.8
"""Share of the properties of a service's public models that must carry a description."""


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



@pytest.mark.parametrize("name", SERVICES)
def test_every_2xx_json_answer_is_typed(name: str) -> None:
    """An empty schema tells an integrator nothing; neither does a bare object on the public API."""
    untyped = []
    for method, path, op in operations(service_app(name).openapi()):
        for status, response in op["responses"].items():
            if not status.startswith("2") or "application/json" not in response.get("content", {}):
                continue
            schema = response["content"]["application/json"].get("schema") or {}
            bare = (set(schema) <= {"type", "additionalProperties", "title"}
                    and not path.startswith("/internal/"))
            if not schema or bare:
                untyped.append(f"{op['operationId']} ({method.upper()} {path} {status}): {schema}")
    assert not untyped, "untyped answers: give each a response model\n" + "\n".join(untyped)


@pytest.mark.parametrize("name", SERVICES)
def test_every_operation_says_what_it_does(name: str) -> None:
    silent = [f"{op['operationId']} ({method.upper()} {path})"
              for method, path, op in operations(service_app(name).openapi())
              if not (op.get("summary") and op.get("description"))]
    assert not silent, "operations without a summary and a description (the route's docstring):\n" + (
        "\n".join(silent))


@pytest.mark.parametrize("name", SERVICES)
def test_most_properties_of_the_public_models_are_described(name: str) -> None:
    doc = service_app(name).openapi()
    fields = [(model, field, prop) for model, schema in doc["components"]["schemas"].items()
              for field, prop in schema.get("properties", {}).items()]
    bare = [f"{model}.{field}" for model, field, prop in fields if not prop.get("description")]
    assert fields and 1 - len(bare) / len(fields) >= MIN_DESCRIBED, (
        f"{len(bare)} of {len(fields)} properties have no description (Field(description=...) or "
        "libs/runtime/openapi_glossary.py):\n" + "\n".join(bare))


@pytest.mark.parametrize("name", SERVICES)
def test_every_request_body_has_an_example_that_fits_it(name: str) -> None:
    doc = service_app(name).openapi()
    missing = []
    for method, path, op in operations(doc):
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        model = model_of(doc, body.get("schema", {}))
        if path.startswith("/internal/") or model is None:
            continue  # operators' tools, not routed by the gateway; bodiless commands
        if not (body.get("examples") or model[1].get("examples")):
            missing.append(f"{op['operationId']} ({method.upper()} {path}): {model[0]}")
    assert not missing, "request bodies without an example:\n" + "\n".join(missing)


@pytest.mark.parametrize("name", SERVICES)
def test_every_example_matches_its_model(name: str) -> None:
    doc = service_app(name).openapi()
    wrong = []
    for model, schema in doc["components"]["schemas"].items():
        validator = Draft202012Validator({**schema, "components": doc["components"]})
        for example in schema.get("examples", []):
            wrong += [f"{model}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
                      for e in validator.iter_errors(example)]
    assert not wrong, "\n".join(wrong)


def test_the_main_answers_of_each_service_carry_examples() -> None:
    main = {"partners": ["PartnerOut", "IssuedKeyOut"], "orders": ["Order", "Product", "PriceListVersion"],
            "credit": ["Account", "PaymentRecorded", "Review", "InvoiceWithWriteOff", "Statement"],
            "delivery": ["ShipmentOut"], "rebates": ["SettlementOut"], "projections": ["Webhook"]}
    for name, models in main.items():
        schemas = service_app(name).openapi()["components"]["schemas"]
        assert [m for m in models if not schemas[m].get("examples")] == [], name


def test_an_answer_off_its_schema_is_refused_with_the_operation_named() -> None:
    checker = ResponseChecker(service_app("orders"))
    example = checker.doc["components"]["schemas"]["Order"]["examples"][0]
    checker.check("GET", "/v1/orders/ord_1", 200, example)
    checker.check("POST", "/v1/orders/ord_1/cancel", 200, {**example, "status": "cancelled"})
    assert checker.checked == [("GET", "/v1/orders/ord_1", 200), ("POST", "/v1/orders/ord_1/cancel", 200)]
    with pytest.raises(AssertionError, match=r"POST /v1/orders 201.*total_minor"):
        checker.check("POST", "/v1/orders", 201, {**example, "total_minor": "1099000"})
    with pytest.raises(AssertionError, match=r"status"):
        checker.check("GET", "/v1/orders", 200, {"items": [{**example, "status": "lost"}],
                                                 "next_cursor": None})
