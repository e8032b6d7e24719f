"""Test support: a scratch publisher feeding the projections consumer, keys, and event factories."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import sqlalchemy
from fastapi import FastAPI
from pydantic import BaseModel, TypeAdapter

from libs.events import credit, orders, partners, rebates
from libs.events.base import DomainEvent, EventMetadata
from libs.events.envelope import Envelope
from libs.events.values import InvoiceLine, OrderLine, PaymentTerms
from libs.messaging.consumer import Outcome
from libs.runtime.audit import audit_router
from libs.runtime.auth import hash_secret
from libs.runtime.http import create_app
from libs.runtime.settings import DEFAULT_PORTS
from libs.store.database import Database
from libs.store.store import EventStore
from services.projections.app import build_spec
from services.projections.application.verify import PeerAudit
from services.projections.settings import ProjectionsSettings
from tests.service_support import RunningService, running


class PeerApps(httpx.AsyncBaseTransport):
    """Routes requests to in-process apps by port (the services' default ports); others refuse."""

    def __init__(self) -> None:
        self.apps: dict[int, httpx.ASGITransport] = {}

    def serve(self, service: str, app: FastAPI) -> None:
        self.apps[DEFAULT_PORTS[service]] = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self.apps.get(request.url.port or 0)
        if transport is None:
            raise httpx.ConnectError("connection refused", request=request)
        return await transport.handle_async_request(request)


def peer_app(db: Database, svc: RunningService) -> FastAPI:
    """A stand-in service exposing only ``/internal/audit/verify`` over ``db``."""

    app = create_app(title="peer", routers=[audit_router()])
    app.state.ctx = SimpleNamespace(db=db, store=EventStore(db, chain=svc.ctx.store.chain))
    app.state.keyring = svc.ctx.keyring
    return app


@dataclass
class Feed:
    """A scratch publisher: appends with the real event classes, then hands each to the consumer."""

    svc: RunningService
    store: EventStore
    moment: datetime

    async def emit(self, stream_id: str, events: Sequence[DomainEvent], *,
                   meta: EventMetadata | None = None, at: datetime | None = None) -> list[Envelope]:
        if at is not None:
            self.moment = at
        appended = await self.store.append(stream_id, stream_id.split("-", 1)[0], None, events,
                                           meta or EventMetadata(actor="test"))
        for envelope in appended:
            assert await self.svc.consumer.handle(envelope) == Outcome.APPLIED
        return appended

    async def key(self, role: str, partner_id: str | None = None) -> dict[str, str]:
        """Issue a key through a ``KeyIssued`` event; answers its Authorization header."""
        secret = f"secret-{uuid.uuid4().hex}"
        await self.emit(f"key-{uuid.uuid4().hex[:8]}", [partners.KeyIssued(
            key_id=uuid.uuid4().hex[:12], role=role, partner_id=partner_id,
            secret_sha256=hash_secret(secret))])  # type: ignore[arg-type]
        await self.svc.ctx.keyring.refresh()
        return {"Authorization": f"Bearer {secret}"}


@asynccontextmanager
async def projections(db: Database, peers: PeerApps | None = None,
                      settings: ProjectionsSettings | None = None) -> AsyncIterator[Feed]:
    spec = build_spec(PeerAudit(transport=peers or PeerApps(), timeout_seconds=5), settings)
    async with running(spec, db) as svc:
        feed = Feed(svc, EventStore(db), datetime(2025, 1, 2, 9, tzinfo=UTC))
        feed.store = EventStore(db, clock=lambda: feed.moment, chain=svc.ctx.store.chain)
        yield feed


def caused_by(envelope: Envelope, actor: str = "system:test") -> EventMetadata:
    return EventMetadata(actor=actor, correlation_id=envelope.correlation_id,
                         causation_id=envelope.event_id)


def registered(partner_id: str, *, tier: str = "gold", region: str = "east") -> DomainEvent:
    return partners.PartnerRegistered(
        partner_id=partner_id, name=f"Partner {partner_id}", legal_id=f"L-{partner_id}",
        kind="distributor", tier=tier, region=region, territories=[region], categories=["tools"],
        payment_terms=PaymentTerms(kind="credit", credit_limit_minor=100_000, term_days=30))


def placed(order_id: str, partner_id: str, lines: Sequence[tuple[str, int, int]]) -> DomainEvent:
    priced = [OrderLine(sku=sku, qty=qty, category="tools", unit_price_minor=price,
                        line_total_minor=qty * price) for sku, qty, price in lines]
    return orders.OrderPlaced(
        order_id=order_id, partner_id=partner_id, partner_ref=f"PO-{order_id}", lines=priced,
        ship_to_region="east", total_minor=sum(line.line_total_minor for line in priced),
        payment_kind="credit")


def invoice(invoice_id: str, order_id: str, partner_id: str, *, issued_on: date, due_on: date,
            lines: Sequence[tuple[str, int, int]] = (("A", 1, 1000),), region: str = "east",
            tier: str = "gold") -> DomainEvent:
    priced = [InvoiceLine(sku=sku, category="tools", qty=qty, unit_price_minor=price,
                          line_total_minor=qty * price) for sku, qty, price in lines]
    return credit.InvoiceIssued(
        invoice_id=invoice_id, order_id=order_id, partner_id=partner_id, dispatch_id=f"d-{invoice_id}",
        lines=priced, total_minor=sum(line.line_total_minor for line in priced),
        issued_on=issued_on, due_on=due_on, region=region, tier=tier)


def credit_note(note_id: str, partner_id: str, amount: int, *, kind: str = "return",
                order_id: str | None = None, issued_on: date = date(2025, 3, 1),
                lines: Sequence[tuple[str, int, int]] = ()) -> DomainEvent:
    return credit.CreditNoteIssued(
        credit_note_id=note_id, partner_id=partner_id, amount_minor=amount, reason="test",
        source_kind=kind, source_ref=f"src-{note_id}", issued_on=issued_on,  # type: ignore[arg-type]
        order_id=order_id,
        lines=[InvoiceLine(sku=sku, category="tools", qty=qty, unit_price_minor=price,
                           line_total_minor=qty * price) for sku, qty, price in lines])


def accrued(program_id: str, partner_id: str, accrued_minor: int) -> DomainEvent:
    return rebates.RebateAccrued(
        program_id=program_id, partner_id=partner_id,
        source={"kind": "invoice", "ref": "i", "amount_minor": 1},  # type: ignore[arg-type]
        basis_minor=accrued_minor * 10, accrued_minor=accrued_minor, tier_rate_bp=1000)


def rendered(model: type[BaseModel], answer: httpx.Response) -> bytes:
    """``answer``'s body as a route with ``response_model=model`` renders it: validated by the
    model, dumped and printed by the services' JSON response (the views answer their items
    built field by field, their payloads as stored: this is what they must equal)."""
    adapter = TypeAdapter(model)
    dumped = adapter.dump_python(adapter.validate_json(answer.content), mode="json")
    return orjson.dumps(dumped, option=orjson.OPT_NON_STR_KEYS)


class ArchiveReads:
    """The statements reading the archive while the block runs, on the writer and the reader."""

    def __init__(self, db: Database) -> None:
        self.engines = list({id(e): e.sync_engine for e in (db.engine, db.reader)}.values())
        self.sent: list[str] = []

    def _heard(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM archive" in statement:
            self.sent.append(statement)

    def __enter__(self) -> ArchiveReads:
        for engine in self.engines:
            sqlalchemy.event.listen(engine, "before_cursor_execute", self._heard)
        return self

    def __exit__(self, *_: object) -> None:
        for engine in self.engines:
            sqlalchemy.event.remove(engine, "before_cursor_execute", self._heard)
