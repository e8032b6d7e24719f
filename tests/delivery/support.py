"""Test helpers for delivery: a fake orders publisher, keys for each role, a fixed clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select

from libs.events.base import DomainEvent, format_timestamp, utc_now
from libs.events.codec import canonical_json
from libs.events.envelope import Envelope
from libs.events.orders import OrderApproved, OrderCancelled, OrderPlaced, OrderRejected
from libs.events.partners import KeyIssued
from libs.events.values import OrderLine
from libs.messaging.consumer import Outcome
from libs.runtime.auth import hash_secret
from libs.store.schema import events
from libs.store.store import _COLUMNS, envelope_from_row
from services.delivery.domain.stock import StockLevel, movements_of
from tests.service_support import ADMIN, RunningService

TODAY = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
WAREHOUSE_SECRET = "test-warehouse-secret"
WAREHOUSE = {"Authorization": f"Bearer {WAREHOUSE_SECRET}"}
"""A warehouse key every test service knows (the ``svc`` fixture issues it)."""


def fix_clock(svc: RunningService, moment: datetime = TODAY) -> None:
    svc.ctx.clock = lambda: moment


def order_placed(order_id: str, lines: dict[str, int], partner_id: str = "ptn_a") -> OrderPlaced:
    return OrderPlaced(
        order_id=order_id, partner_id=partner_id, partner_ref=f"ref-{order_id}",
        lines=[OrderLine(sku=sku, qty=qty, category="tools", unit_price_minor=100,
                         line_total_minor=100 * qty) for sku, qty in lines.items()],
        ship_to_region="east", total_minor=100 * sum(lines.values()), payment_kind="credit")


class FakePublisher:
    """Appends nothing anywhere: builds the envelopes another service would publish and hands
    them to delivery's consumer, exactly as the consumer runtime would."""

    def __init__(self, svc: RunningService) -> None:
        self.svc = svc
        self.versions: dict[str, int] = {}
        self.correlations: dict[str, uuid.UUID] = {}
        self.last: Envelope | None = None

    async def emit(self, stream_id: str, event: DomainEvent, *, stream_type: str = "order",
                   correlation_id: uuid.UUID | None = None) -> Outcome:
        self.envelope(stream_id, event, stream_type=stream_type, correlation_id=correlation_id)
        assert self.last is not None
        outcome = await self.svc.consumer.handle(self.last)
        assert outcome in (Outcome.APPLIED, Outcome.IGNORED, Outcome.DUPLICATE), outcome
        return outcome

    def envelope(self, stream_id: str, event: DomainEvent, *, stream_type: str = "order",
                 correlation_id: uuid.UUID | None = None) -> Envelope:
        """The next envelope of ``stream_id`` (not handed to the consumer: ``emit`` does that)."""
        version = self.versions.get(stream_id, 0) + 1
        self.versions[stream_id] = version
        correlation = correlation_id or self.correlations.setdefault(stream_id, uuid.uuid4())
        self.last = Envelope(
            event_id=uuid.uuid4(), event_type=event.TYPE, schema_version=event.VERSION,
            stream_id=stream_id, stream_type=stream_type, stream_version=version,
            occurred_at=format_timestamp(utc_now()), correlation_id=correlation,
            causation_id=None, actor="test:orders", data=canonical_json(event.payload()).decode(),
        )
        return self.last

    async def place(self, order_id: str, lines: dict[str, int], partner_id: str = "ptn_a") -> None:
        await self.emit(f"order-{order_id}", order_placed(order_id, lines, partner_id))

    async def approve(self, order_id: str) -> None:
        await self.emit(f"order-{order_id}", OrderApproved(order_id=order_id))

    async def cancel(self, order_id: str, partner_id: str = "ptn_a") -> None:
        await self.emit(f"order-{order_id}", OrderCancelled(order_id=order_id,
                                                            partner_id=partner_id, reason="no"))

    async def reject(self, order_id: str) -> None:
        await self.emit(f"order-{order_id}", OrderRejected(order_id=order_id, reason="risk"))

    async def issue_key(self, role: str, partner_id: str | None = None,
                        secret: str | None = None) -> dict[str, str]:
        """A bearer header for a fresh key of ``role`` (bound to ``partner_id`` for partners)."""
        secret = secret or f"secret-{uuid.uuid4().hex}"
        key_id = f"key_{uuid.uuid4().hex[:8]}"
        await self.emit(f"key-{key_id}", KeyIssued(
            key_id=key_id, role=role, partner_id=partner_id,  # type: ignore[arg-type]
            secret_sha256=hash_secret(secret)), stream_type="key")
        await self.svc.ctx.keyring.refresh()
        return {"Authorization": f"Bearer {secret}"}


async def delivery_events(svc: RunningService, stream_id: str) -> list[dict[str, Any]]:
    """The events delivery appended to ``stream_id``: ``{"type", **payload}``."""
    return [{"type": envelope.event_type, **envelope.payload()}
            for envelope in await svc.ctx.store.load(stream_id)]


DISPATCH = {"carrier": "SF Express", "tracking_no": "SF123"}


async def book(svc: RunningService, sku: str, qty: int, headers: dict[str, str] = WAREHOUSE,
               reference: str | None = None) -> httpx.Response:
    return await svc.client.post("/v1/stock/receipts", headers=headers, json={
        "sku": sku, "qty": qty, "reference": reference or f"DN-{uuid.uuid4().hex[:6]}"})


async def shipped_order(svc: RunningService, orders: FakePublisher, order_id: str,
                        lines: dict[str, int], partner_id: str = "ptn_a") -> dict[str, Any]:
    """An approved order with stock for it: its pending shipment."""
    for sku, qty in lines.items():
        assert (await book(svc, sku, qty)).status_code == 201
    await orders.place(order_id, lines, partner_id=partner_id)
    await orders.approve(order_id)
    [shipment] = (await svc.client.get(f"/v1/shipments?order_id={order_id}",
                                       headers=ADMIN)).json()["items"]
    return shipment


async def dispatch(svc: RunningService, shipment_id: str, lines: dict[str, int],
                   headers: dict[str, str] = WAREHOUSE) -> httpx.Response:
    return await svc.client.post(f"/v1/shipments/{shipment_id}/dispatch", headers=headers, json={
        "lines": [{"sku": sku, "qty": qty} for sku, qty in lines.items()], **DISPATCH})


def problem(response: httpx.Response, status: int, slug: str) -> dict:
    """Assert ``response`` is the problem ``slug`` with ``status``; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith(f"/{slug}"), response.json()
    return response.json()


async def assert_ledger_is_the_fold(svc: RunningService) -> list[dict[str, Any]]:
    """``GET /v1/stock`` lists exactly the ledger folded from delivery's events; returns it."""
    listed: list[dict[str, Any]] = (await svc.client.get("/v1/stock", headers=WAREHOUSE)).json()["items"]
    assert listed == await folded_ledger(svc)
    return listed


async def folded_ledger(svc: RunningService) -> list[dict[str, Any]]:
    """The stock ledger folded from delivery's events in commit order, as ``GET /v1/stock`` lists it."""
    folded: dict[str, StockLevel] = {}
    # in commit order, straight from the table: read_all's horizon on a shared PostgreSQL server
    # waits for every open transaction, other test runs' too
    async with svc.ctx.db.read() as conn:
        rows = (await conn.execute(select(*_COLUMNS).order_by(events.c.tx_id, events.c.position))).all()
    for envelope in map(envelope_from_row, rows):
        for quantities, move in movements_of(svc.ctx.registry.decode(envelope)):
            for sku, qty in quantities.items():
                folded[sku] = move(folded.get(sku, StockLevel(sku)), qty)
    return [level.as_dict() for level in sorted(folded.values(), key=lambda lv: lv.sku)]
