"""Exports on the real services: the aging report parsed back equals its JSON; each service's lists export."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date
from decimal import Decimal

import openpyxl
import pytest

from libs.events.partners import KeyIssued
from libs.runtime.auth import hash_secret, store_key
from libs.runtime.host import ServiceContext
from libs.store.database import Database
from services.credit.app import SPEC as CREDIT
from services.delivery.app import SPEC as DELIVERY
from services.orders.app import SPEC as ORDERS
from services.partners.app import SPEC as PARTNERS
from services.projections.app import SPEC as PROJECTIONS
from services.rebates.app import SPEC as REBATES
from tests.conftest import Migrations, migrations_of
from tests.projections.support import invoice, projections, registered
from tests.service_support import ADMIN, running


async def test_aging_exports_as_csv_and_xlsx_equal_to_its_json(db: Database) -> None:
    async with projections(db) as feed:
        for pid, region in (("p1", "east"), ("p2", "west,\"q\"")):
            await feed.emit(f"partner-{pid}", [registered(pid, region=region)])
        await feed.emit("invoice-i1", [invoice("i1", "o1", "p1", issued_on=date(2025, 1, 1),
                                               due_on=date(2025, 1, 31), lines=[("A", 3, 41_15)])])
        await feed.emit("invoice-i2", [invoice("i2", "o2", "p2", issued_on=date(2025, 2, 20),
                                               due_on=date(2025, 3, 20), lines=[("B", 1, 999_999_99)])])
        finance = await feed.key("finance")
        client = feed.svc.client
        url = "/v1/views/receivables/aging?as_of=2025-03-01"
        items = (await client.get(url, headers=finance)).json()["items"]
        assert len(items) == 2
        money = ("current", "d1_30", "d31_60", "d61_90", "d90_plus", "on_account", "total")
        expected = [{"partner_id": r["partner_id"], "name": r["name"], "currency": "CNY",
                     **{m: Decimal(r[f"{m}_minor"]) / 100 for m in money}} for r in items]

        answer = await client.get(url, headers={**finance, "Accept": "text/csv"})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert [{**r, **{m: Decimal(r[m]) for m in money}} for r in rows] == expected
        assert rows[0]["total"] == "123.45"  # exactly two decimals, as written

        book = await client.get(url + "&format=xlsx", headers=finance)
        assert book.status_code == 200, book.text
        sheet = openpyxl.load_workbook(io.BytesIO(book.content), read_only=True).active
        header, *cells = list(sheet.iter_rows(values_only=True))
        parsed = [dict(zip(header, row, strict=True)) for row in cells]
        assert [{**r, **{m: Decimal(str(r[m])) for m in money}} for r in parsed] == expected

        assert (await client.get(url + "&format=csv")).status_code == 401  # the route's own checks hold
        assert (await client.get(url + "&format=doc", headers=finance)).status_code == 422


async def _finance_key(ctx: ServiceContext) -> dict[str, str]:
    secret = f"secret-{uuid.uuid4().hex}"
    async with ctx.db.transaction() as conn:
        await store_key(conn, KeyIssued(key_id=uuid.uuid4().hex[:12], role="finance", partner_id=None,
                                        secret_sha256=hash_secret(secret)), "2025-01-01T00:00:00Z")
    await ctx.keyring.refresh()
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def service_migrations(request: pytest.FixtureRequest) -> Migrations:
    """``db`` comes migrated for the service the case runs: its ``spec``, else projections."""
    spec = getattr(request.node, "callspec", None) and request.node.callspec.params.get("spec")
    return migrations_of(spec or PROJECTIONS)


@pytest.mark.parametrize(("spec", "path"), [
    (PARTNERS, "/v1/partners?limit=1"), (ORDERS, "/v1/products?limit=1"), (CREDIT, "/v1/invoices"),
    (DELIVERY, "/v1/shipments"), (REBATES, "/v1/programs"), (None, "/v1/audit/events?limit=1"),
], ids=["partners", "orders", "credit", "delivery", "rebates", "projections"])
async def test_a_list_of_every_service_answers_csv(db: Database, spec: object, path: str) -> None:
    if spec is None:
        async with projections(db) as feed:
            await feed.emit("partner-p1", [registered("p1")])
            await feed.emit("partner-p2", [registered("p2")])
            answer = await feed.svc.client.get(path, headers={**await feed.key("auditor"),
                                                              "Accept": "text/csv"})
            assert answer.status_code == 200, answer.text
            rows = list(csv.DictReader(io.StringIO(answer.text)))
            assert len(rows) >= 3 and rows[0]["type"] == "PartnerRegistered"  # paged one by one
        return
    async with running(spec, db) as svc:  # type: ignore[arg-type]
        client = svc.client
        if spec is PARTNERS:
            for n in (1, 2):
                assert (await client.post("/v1/partners", headers=ADMIN, json={
                    "name": f"P{n}", "legal_id": f"L{n}", "kind": "distributor", "tier": "gold",
                    "region": "east", "territories": ["east"],
                    "payment_terms": {"kind": "credit", "credit_limit_minor": 500_00, "term_days": 30}})
                    ).status_code == 201
        if spec is ORDERS:
            for sku in ("A", "B"):
                assert (await client.post("/v1/products", headers=ADMIN, json={
                    "sku": sku, "name": sku, "category": "tools", "list_price_minor": 12_34})
                    ).status_code == 201
        who = await _finance_key(svc.ctx) if spec is CREDIT else ADMIN
        answer = await client.get(path, headers={**who, "Accept": "text/csv"})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "text/csv; charset=utf-8"
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        if spec is PARTNERS:
            assert sorted(r["name"] for r in rows) == ["P1", "P2"]
            assert {r["payment_terms.credit_limit"] for r in rows} == {"500.00"}
        if spec is ORDERS:
            assert sorted((r["sku"], r["list_price"]) for r in rows) == [("A", "12.34"), ("B", "12.34")]
