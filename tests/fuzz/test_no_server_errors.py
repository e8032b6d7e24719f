"""No request answers 5xx, and every 4xx is problem+json: every operation of every service.

Each service runs in process on its own SQLite database (``running`` from
``tests.service_support``), with a few records seeded so that path ids can name
something real, and keys for every role (a partner key bound to the seeded
partner, and another partner's). Three passes:

- **generated**: schemathesis derives requests from each service's OpenAPI
  document, schema-valid and schema-violating, with Hypothesis derandomized
  (same examples on every run, no example database) and a small budget;
- **nasty**: hand-picked inputs for every path parameter, query parameter and
  body field (NUL and other control characters, huge and negative numbers,
  floats for ints, very long strings, impossible dates, cursors that decode to
  NUL, JSON that is not an object, duplicate keys, broken UTF-8, broken
  credentials, ...);
- **isolation**: another partner's key reads every seeded record and list, and
  never gets the seeded partner's data.

A finding names the operation, the request and the answer. The test runs on
SQLite only; the per-service ``test_bad_input`` suites pin the findings on
both databases.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from libs.events.base import DomainEvent, EventMetadata
from libs.events.orders import OrderApproved, OrderPlaced
from libs.events.partners import AgreementSigned, KeyIssued, PartnerRegistered
from libs.events.values import OrderLine, PaymentTerms
from libs.runtime.auth import hash_secret, store_key
from libs.runtime.host import ServiceSpec, build_app
from libs.store.database import Database
from libs.store.migrate import migrate
from libs.store.store import EventStore
from tests.service_support import ADMIN, RunningService, running

T = TypeVar("T")

SERVICES = ("partners", "orders", "credit", "delivery", "rebates", "projections")
EXAMPLES = 8
"""Generated examples per operation, mode and service: the whole file stays well under 60 s."""
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                suppress_health_check=list(HealthCheck), print_blob=False,
                phases=(Phase.explicit, Phase.generate, Phase.shrink), report_multiple_bugs=False)
PARTNER = "ptn_fuzz"
OTHER_PARTNER = "ptn_other"

NUL = "\u0000"
NASTY_IDS = ["%00", "a%00b", "%1B", "%2F", "a%2Fb", "%25", "..", "%FF", "%ED%A0%80", "x" * 5000,
             "%C3%A9", "%20", "'%20OR%201=1--"]
NASTY_QUERY = ["%00", "a%00b", "%1B", "", "-1", "0", str(2**63), str(10**30), "1.5", "1e3", "x" * 5000,
               "%FF", "%ED%A0%80", "[]", "2026-02-30", "9999-12-31", "0001-01-01", "true",
               "%C2%B36", "%D9%A1", "AA", "YQA", "____", "=", "2026-W01-1"]
NASTY_VALUES: list[Any] = [
    NUL, "a\u0000b", "\u001b[2J", "\ud800", "", " ", "x" * 100_000, "\u540d\U0001f600", 2**63, 10**30, -1,
    -(2**63) - 1, 1.5, 1e308, True, None, [], {}, [NUL], {"a": NUL}, "2026-02-30", "9999-12-31",
    "0001-01-01", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00", "1773309600",
]
NASTY_BODIES = [b"", b"null", b"[]", b'"x"', b"1", b"{", b'{"a": 1, "a": 2}', b'{"a": "\xff"}',
                b'{"a": NaN}', b'{"a": ' + b"9" * 5000 + b"}", b"[" * 5000 + b"]" * 5000,
                b'{"\\u0000": 1}', b'{"\\ud800": 1}']
NASTY_AUTH: list[dict[str, Any]] = [
    {}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Bearer  "},
    {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer " + "x" * 10_000},
    {"Authorization": b"Bearer \xff\xfe"}, {"Authorization": "Bearer a\tb"},
]


@dataclass
class Target:
    """One service running on its own loop, its OpenAPI document, its callers and seeded ids."""

    name: str
    loop: asyncio.AbstractEventLoop
    svc: RunningService
    openapi: dict[str, Any]
    callers: dict[str, dict[str, Any]]
    ids: dict[str, str]
    findings: list[str] = field(default_factory=list)

    def run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)

    def send(self, method: str, url: str, *, headers: dict[str, Any] | None = None,
             params: Any = None, content: bytes | None = None) -> httpx.Response:
        return self.run(self.svc.client.request(method, url, headers=headers, params=params,
                                                content=content))

    def check(self, what: str, response: httpx.Response) -> None:
        """Record ``what`` when the answer is a 5xx or a 4xx that is not a problem."""
        finding = verdict(response)
        if finding:
            self.findings.append(f"{what}\n    -> {finding}")


def verdict(response: httpx.Response) -> str | None:
    status, media = response.status_code, response.headers.get("content-type", "")
    if status >= 500:
        return f"{status} {media} {response.text[:300]}"
    if status >= 400:
        if not media.startswith("application/problem+json"):
            return f"{status} is not problem+json ({media!r}): {response.text[:300]}"
        body = response.json()
        if not (isinstance(body, dict) and body.get("status") == status
                and {"type", "title", "detail"} <= body.keys()):
            return f"{status} problem lacks type/title/status/detail: {response.text[:300]}"
    return None


# -- the services, seeded -----------------------------------------------------------------


def spec_of(name: str) -> ServiceSpec:
    if name == "projections":
        from services.projections.app import build_spec
        from services.projections.application.verify import PeerAudit

        class Unreachable(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                raise httpx.ConnectError("no peers in the fuzz run", request=request)

        return build_spec(PeerAudit(transport=Unreachable(), timeout_seconds=1))
    import importlib

    return importlib.import_module(f"services.{name}.app").SPEC  # type: ignore[no-any-return]


def partner_events(partner_id: str) -> list[DomainEvent]:
    return [
        PartnerRegistered(partner_id=partner_id, name="Fuzz Ltd", legal_id=f"L-{partner_id}",
                          kind="distributor", tier="gold", region="east", territories=["east"],
                          categories=[], payment_terms=PaymentTerms(
                              kind="credit", credit_limit_minor=1_000_000, term_days=30)),
        AgreementSigned(partner_id=partner_id, agreement_id=f"agr-{partner_id}", kind="annual",
                        starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31),
                        status_after="active"),
    ]


def placed(order_id: str) -> list[DomainEvent]:
    return [OrderPlaced(order_id=order_id, partner_id=PARTNER, partner_ref="PO-1", lines=[
        OrderLine(sku="SKU-1", qty=5, category="pumps", unit_price_minor=100, line_total_minor=500)],
        ship_to_region="east", total_minor=500, payment_kind="credit"), OrderApproved(order_id=order_id)]


async def seed(name: str, svc: RunningService, emit: Callable[..., Awaitable[None]],
               callers: dict[str, dict[str, Any]]) -> dict[str, str]:
    """A few real records, so that generated path ids can name something that exists."""
    ids = {"partner_id": PARTNER, "order_id": "ord_fuzz"}

    async def call(method: str, path: str, body: dict[str, Any] | None = None,
                   who: str = "admin") -> Any:
        answer = await svc.client.request(method, path, json=body, headers=callers[who])
        assert answer.status_code < 300, (path, answer.text)
        return answer.json()

    async def post(path: str, body: dict[str, Any], who: str = "admin") -> Any:
        return await call("POST", path, body, who)

    if name == "partners":
        ids["partner_id"] = (await post("/v1/partners", {
            "name": "Fuzz Ltd", "legal_id": "L-FUZZ", "kind": "distributor", "tier": "gold",
            "region": "east", "territories": ["east"],
            "payment_terms": {"kind": "credit", "credit_limit_minor": 1000, "term_days": 30}}))["id"]
        ids["key_id"] = (await post("/v1/keys", {"role": "sales"}))["key_id"]
    elif name == "orders":
        await emit(f"partner-{PARTNER}", *partner_events(PARTNER))
        await post("/v1/products", {"sku": "SKU-1", "name": "Pump", "category": "pumps",
                                    "list_price_minor": 1000})
        await call("PUT", "/v1/price-lists/gold", {"effective_from": "2020-01-01", "discount_bp": 100,
                                                   "override_reason": "fuzz catalog"})
        await call("PUT", "/v1/price-lists/gold", {"effective_from": "2099-01-01", "discount_bp": 200})
        deal = await post("/v1/deals", {"end_customer": "Fuzz End Customer", "expires_on": "2099-01-01",
                                        "lines": [{"sku": "SKU-1", "qty": 9}], "partner_id": PARTNER})
        await post(f"/v1/deals/{deal['id']}/approve", {"lines": [{"sku": "SKU-1", "unit_price_minor": 500}]})
        ids.update(sku="SKU-1", tier="gold", deal_id=deal["id"], order_id=(await post("/v1/orders", {
            "partner_ref": "PO-1", "lines": [{"sku": "SKU-1", "qty": 1}],
            "ship_to": {"region": "east"}, "partner_id": PARTNER}))["id"],
            notice_id=(await call("GET", "/v1/price-notices"))["items"][0]["id"])
    elif name == "delivery":
        await post("/v1/stock/receipts", {"sku": "SKU-1", "qty": 100, "reference": "DN-1"},
                   who="warehouse")
        await emit("order-ord_fuzz", *placed("ord_fuzz"))
        shipment = (await call("GET", "/v1/shipments?order_id=ord_fuzz"))["items"][0]
        ids.update(sku="SKU-1", shipment_id=shipment["id"])
        await post(f"/v1/shipments/{shipment['id']}/dispatch", {  # complete: deliveries get far
            "lines": [{"sku": "SKU-1", "qty": 5}], "carrier": "SF", "tracking_no": "1"},
            who="warehouse")
        ids["return_id"] = (await post("/v1/returns", {
            "order_id": "ord_fuzz", "lines": [{"sku": "SKU-1", "qty": 1}], "reason": "dented",
            "kind": "refund"}))["id"]
    elif name in ("credit", "rebates"):
        await emit(f"partner-{PARTNER}", *partner_events(PARTNER))
        if name == "rebates":
            ids["program_id"] = (await post("/v1/programs", {
                "name": "Fuzz", "starts_on": "2026-01-01", "ends_on": "2026-12-31",
                "basis": "invoiced", "mode": "retroactive",
                "tiers": [{"from_minor": 0, "rate_bp": 100}]}, who="finance"))["id"]
            coop = (await post("/v1/programs", {
                "name": "Fuzz co-op", "kind": "coop", "starts_on": "2026-01-01", "ends_on": "2026-12-31",
                "coop": {"share_bp": 200, "match_bp": 5000, "expires_on": "2099-12-31"}},
                who="finance"))["id"]
            # filed by a finance key of its own, so that the seeded finance key may decide it
            callers["filer"] = await key(svc, "finance", name="filer")
            ids["claim_id"] = (await post("/v1/coop-claims", {
                "program_id": coop, "partner_id": PARTNER, "amount_minor": 1_000, "description": "ads",
                "evidence_ref": "ev-1"}, who="filer"))["id"]
    elif name == "projections":
        await emit(f"partner-{PARTNER}", *partner_events(PARTNER))
        ids["webhook_id"] = (await post("/v1/webhooks", {  # registered first: the order is pushed
            "url": "https://hooks.fuzz.example/o2c", "secret": "fuzz-webhook-secret",
            "events": ["order.status_changed"], "partner_id": PARTNER}))["id"]
        await emit("order-ord_fuzz", *placed("ord_fuzz"))
        ids["delivery_id"] = (await call("GET", f"/v1/webhooks/{ids['webhook_id']}/deliveries")
                              )["items"][0]["id"]
    return ids


async def key(svc: RunningService, role: str, partner_id: str | None = None,
              name: str = "staff") -> dict[str, str]:
    """A key as the partners service's ``KeyIssued`` would store it everywhere."""
    key_id = f"key_{role}_{partner_id or name}"
    secret = f"fuzz-secret-{key_id}"
    async with svc.ctx.db.transaction() as conn:
        await store_key(conn, KeyIssued(key_id=key_id, role=role, partner_id=partner_id,  # type: ignore[arg-type]
                                        secret_sha256=hash_secret(secret)), "2026-01-01T00:00:00.000000Z")
    await svc.ctx.keyring.refresh()
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture(scope="module", params=SERVICES)  # one xdist unit per service (tests/conftest.py)
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    name: str = request.param
    folder: Path = tmp_path_factory.mktemp(f"fuzz-{name}")
    loop = asyncio.new_event_loop()
    db = Database(f"sqlite:///{folder / 'store.db'}", sqlite_synchronous="OFF")
    scratch = Database(f"sqlite:///{folder / 'foreign.db'}", sqlite_synchronous="OFF")
    context = running(spec_of(name), db)
    try:
        loop.run_until_complete(migrate(db))
        loop.run_until_complete(migrate(scratch))
        svc = loop.run_until_complete(context.__aenter__())
        foreign = EventStore(scratch)

        async def emit(stream_id: str, *events: DomainEvent) -> None:
            for envelope in await foreign.append(stream_id, stream_id.split("-")[0], None, list(events),
                                                 EventMetadata(actor="system:fuzz")):
                await svc.consumer.handle(envelope)

        async def callers() -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
            found: dict[str, dict[str, Any]] = {"admin": ADMIN}
            for role in ("sales", "finance", "warehouse", "auditor"):
                found[role] = await key(svc, role)
            ids = await seed(name, svc, emit, found)
            found["partner"] = await key(svc, "partner", ids["partner_id"])
            found["other-partner"] = await key(svc, "partner", OTHER_PARTNER)
            return found, ids

        keys, ids = loop.run_until_complete(callers())
        yield Target(name, loop, svc, build_app(svc.spec, svc.ctx).openapi(), keys, ids)
        loop.run_until_complete(context.__aexit__(None, None, None))
    finally:
        loop.run_until_complete(db.dispose())
        loop.run_until_complete(scratch.dispose())
        loop.close()


def report(target: Target) -> str:
    shown = "\n".join(target.findings[:25])
    return f"{len(target.findings)} request(s) to {target.name} broke the contract:\n{shown}"


# -- generated requests ----------------------------------------------------------------------


CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def scrubbed(value: Any) -> Any:
    """``value`` without control characters, which every service refuses in any text.

    Schema-valid cases are scrubbed so that they get past validation into the services;
    the nasty pass sends control characters on purpose.
    """
    if isinstance(value, str):
        return CONTROL.sub("", value)
    if isinstance(value, list):
        return [scrubbed(item) for item in value]
    if isinstance(value, dict):
        return {scrubbed(k): scrubbed(v) for k, v in value.items()}
    return value


def case_request(case: Any) -> dict[str, Any]:
    """A schemathesis case as httpx keyword arguments."""
    sent = case.as_transport_kwargs(base_url="http://test")
    headers = {k: (v if v.isascii() else v.encode("utf-8"))
               for k, v in (sent.get("headers") or {}).items()
               if k.lower() not in ("user-agent", "x-schemathesis-testcaseid")}
    if "json" in sent:
        content = json.dumps(sent["json"]).encode()
    elif isinstance(sent.get("data"), str):
        content = sent["data"].encode()
    else:
        content = sent.get("data")
    return {"method": sent["method"], "url": sent["url"], "headers": headers,
            "params": sent.get("params"), "content": content}


def fuzz(target: Target, strategy: Any, mode: GenerationMode, caller: dict[str, Any]) -> str | None:
    """Run the generated cases of one operation in one mode; the (shrunk) finding, if any."""

    @FUZZ
    @given(case=strategy)
    def call(case: Any) -> None:
        if mode is GenerationMode.POSITIVE:
            case.body = scrubbed(case.body)
            case.path_parameters = scrubbed(case.path_parameters)
            case.query = scrubbed(case.query)
        request = case_request(case)
        request["headers"].update(caller)
        finding = verdict(target.send(**request))
        assert finding is None, (f"{request['method']} {request['url']} params={request['params']!r} "
                                 f"body={request['content']!r:.300}\n    -> {finding}")

    try:
        call()
    except Unsatisfiable:
        return None  # no schema-violating input exists for this operation (a bare path)
    except AssertionError as error:
        return str(error)
    return None


def test_generated_requests_never_answer_5xx(target: Target) -> None:
    target.findings.clear()
    schema = schemathesis.openapi.from_dict(target.openapi)
    for method, path, spec in operations(target):
        operation = schema[path][method.lower()]
        names = [p["name"] for p in spec.get("parameters", []) if p["in"] == "path"]
        seeded = {n: target.ids[n] for n in names if n in target.ids}
        # a caller the operation admits: 401/403 would end every request before the input
        # matters (the nasty pass tries every caller and broken credentials)
        admitted = caller_for(target, method, path, "requestBody" in spec)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            if seeded:  # as often a record that exists as a generated id
                strategy = st.one_of(operation.as_strategy(generation_mode=mode,
                                                           path_parameters=seeded), strategy)
            finding = fuzz(target, strategy, mode, admitted)
            if finding:
                target.findings.append(f"{operation.label} ({mode.value}): {finding}")
    if target.findings:
        pytest.fail(report(target), pytrace=False)


# -- nasty inputs ----------------------------------------------------------------------------


def resolve(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    for branch in schema.get("anyOf", []):
        if "$ref" in branch or branch.get("type") == "object":
            return resolve(openapi, branch)
    return schema


def plausible(openapi: dict[str, Any], schema: dict[str, Any], name: str, ids: dict[str, str]) -> Any:
    """A value the schema accepts, to carry one nasty field past the others' validation."""
    schema = resolve(openapi, schema)
    if name in ids:
        return ids[name]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {prop: plausible(openapi, sub, prop, ids)
                for prop, sub in schema.get("properties", {}).items()
                if prop in schema.get("required", [])}
    if kind == "array":
        return [plausible(openapi, schema.get("items", {}), name.rstrip("s"), ids)]
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if schema.get("format") == "date" or name.endswith("_on") or name in ("to", "from"):
        return "2026-03-01"
    if schema.get("format") == "date-time" or name.endswith("_at"):
        return "2026-03-01T10:00:00Z"
    return "SKU-1" if name == "sku" else "x1"


def operations(target: Target) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in target.openapi["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def fill(path: str, ids: dict[str, str], **override: str) -> str:
    """``path`` with its parameters: ``override``, else the seeded id, else one that exists nowhere."""
    return re.sub(r"\{(\w+)\}", lambda m: override.get(m[1], ids.get(m[1], "x1")), path)


def caller_for(target: Target, method: str, path: str, has_body: bool) -> dict[str, Any]:
    """The first caller the operation admits (401/403 would hide what the input does).

    Asked with an empty body, which validation refuses after authorisation: no effect.
    """
    for who in ("admin", "finance", "warehouse", "sales", "auditor", "partner"):
        answer = target.send(method, fill(path, target.ids), headers={
            **target.callers[who], "Content-Type": "application/json"},
            content=b"{}" if has_body else None)
        if answer.status_code not in (401, 403):
            return target.callers[who]
    return target.callers["admin"]


def properties(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    schema = resolve(openapi, schema)
    if schema.get("type") == "array":
        schema = resolve(openapi, schema.get("items", {}))
    return schema.get("properties", {}) if schema.get("type") == "object" else {}


def mutations(openapi: dict[str, Any], schema: dict[str, Any], ids: dict[str, str]
              ) -> Iterator[tuple[str, Any]]:
    """A plausible body with one field (optional ones too, one level down too) made nasty."""
    base = plausible(openapi, schema, "", ids)
    for name, sub in properties(openapi, schema).items():
        for nasty in NASTY_VALUES:
            yield name, {**base, name: nasty}
        inner_fields = properties(openapi, sub)
        if not inner_fields:
            continue
        many = resolve(openapi, sub).get("type") == "array"
        template = plausible(openapi, resolve(openapi, sub).get("items", {}) if many else sub, name, ids)
        for inner in inner_fields:
            for nasty in (NUL, "x" * 100_000, 2**63, -1, 1.5, "2026-02-30", [], None):
                changed = {**template, inner: nasty}
                yield f"{name}.{inner}", {**base, name: [changed] if many else changed}
    yield "an unknown field", {**base, "unexpected": 1}


def test_nasty_inputs_never_answer_5xx(target: Target) -> None:
    """Bodies first: until one is accepted, the seeded records are as seeded (a shipment not yet
    delivered, say), so each nasty field gets as far into the domain as it can."""
    target.findings.clear()
    openapi, ids = target.openapi, target.ids
    for method, path, operation in operations(target):
        params = operation.get("parameters", [])
        body_schema = (operation.get("requestBody", {}).get("content", {})
                       .get("application/json", {}).get("schema"))
        base = plausible(openapi, body_schema, "", ids) if body_schema else None
        base_bytes = json.dumps(base).encode() if base is not None else None
        headers = {**caller_for(target, method, path, base is not None),
                   "Content-Type": "application/json"}
        label, url = f"{method} {path}", fill(path, ids)
        if isinstance(base, dict):
            for name, body in mutations(openapi, body_schema, ids):
                shown = json.dumps(body.get(name.split(".")[0]))[:60]
                target.check(f"{label} body {name}={shown}", target.send(
                    method, url, headers=headers, content=json.dumps(body).encode()))
        for raw in NASTY_BODIES if body_schema else ():
            target.check(f"{label} raw body {raw[:40]!r}",
                         target.send(method, url, headers=headers, content=raw))
        for param in (p for p in params if p["in"] == "path"):
            for nasty in NASTY_IDS:
                target.check(f"{label} path {param['name']}={nasty[:40]!r}", target.send(
                    method, fill(path, ids, **{param["name"]: nasty}), headers=headers,
                    content=base_bytes))
        for param in (p for p in params if p["in"] == "query"):
            for nasty in NASTY_QUERY:
                target.check(f"{label} query {param['name']}={nasty[:40]!r}", target.send(
                    method, f"{url}?{param['name']}={nasty}", headers=headers, content=base_bytes))
        for param in (p for p in params if p["in"] == "header"):
            for value in ("x" * 300, "\xe9t\xe9".encode("latin-1"), " "):
                target.check(f"{label} header {param['name']}={value[:40]!r}", target.send(
                    method, url, headers={**headers, param["name"]: value}, content=base_bytes))
        for auth in NASTY_AUTH:
            target.check(f"{label} auth {auth!r:.60}", target.send(
                method, url, headers={**auth, "Content-Type": "application/json"},
                content=base_bytes))
    if target.findings:
        pytest.fail(report(target), pytrace=False)


def test_another_partner_never_sees_the_seeded_partners_data(target: Target) -> None:
    """Every read, with the seeded ids in the path and the filters, by another partner's key:
    answered without the seeded partner's id (its records answer 404, or 403 where a partner
    may not read at all)."""
    target.findings.clear()
    own, other = target.ids["partner_id"], target.callers["other-partner"]
    for method, path, operation in operations(target):
        if method != "GET":
            continue
        filters = {p["name"]: target.ids[p["name"]] for p in operation.get("parameters", [])
                   if p["in"] == "query" and p["name"] in target.ids}
        for params in ({}, filters) if filters else ({},):
            response = target.send("GET", fill(path, target.ids), headers=other, params=params)
            what = f"{method} {path} {params or ''} as another partner"
            target.check(what, response)
            if response.status_code < 300 and own in response.text:
                target.findings.append(f"{what}\n    -> {response.status_code} names {own}: "
                                       f"{response.text[:300]}")
    if target.findings:
        pytest.fail(report(target), pytrace=False)


def test_the_verdict_flags_5xx_and_4xx_that_are_not_problems() -> None:
    assert verdict(httpx.Response(500, json={"status": 500})) is not None
    assert verdict(httpx.Response(422, json={"detail": "x"})) is not None
    assert verdict(httpx.Response(404, headers={"content-type": "application/problem+json"},
                                  json={"type": "t", "title": "t", "status": 400, "detail": "d"}))
    assert verdict(httpx.Response(404, headers={"content-type": "application/problem+json"},
                                  json={"type": "t", "title": "t", "status": 404, "detail": "d"})) is None
