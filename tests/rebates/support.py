"""Helpers for the rebates tests: keys, foreign events fed to the consumer, request bodies."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from libs.events.base import DomainEvent, format_timestamp, utc_now
from libs.events.codec import canonical_json, parse_json
from libs.events.credit import (
    AdvanceApplied,
    CreditNoteIssued,
    InvoiceIssued,
    InvoicePaid,
    PaymentApplied,
)
from libs.events.envelope import Envelope
from libs.events.partners import KeyIssued, PartnerRegistered, PartnerTierChanged
from libs.events.values import InvoiceLine, PaymentTerms
from libs.messaging.consumer import Outcome
from libs.runtime.auth import hash_secret, store_key
from libs.store.schema import events
from tests.service_support import RunningService

TIERS = [{"from_minor": 0, "rate_bp": 100}, {"from_minor": 1_000_000, "rate_bp": 200},
         {"from_minor": 5_000_000, "rate_bp": 300}]


async def issue_key(svc: RunningService, role: str, partner_id: str | None = None,
                    key_id: str | None = None) -> dict[str, str]:
    """Store a key the way the partners service's ``KeyIssued`` would; answer its bearer headers."""
    key_id = key_id or f"key_{uuid.uuid4().hex[:8]}"
    secret = f"secret-{key_id}"
    event = KeyIssued(key_id=key_id, role=role, partner_id=partner_id,  # type: ignore[arg-type]
                      secret_sha256=hash_secret(secret))
    async with svc.ctx.db.transaction() as conn:
        await store_key(conn, event, format_timestamp(utc_now()))
    await svc.ctx.keyring.refresh()
    return {"Authorization": f"Bearer {secret}"}


class Feed:
    """Feeds other services' events to the rebates consumer, as the consumer runtime would."""

    def __init__(self, svc: RunningService) -> None:
        self.svc = svc
        self.versions: dict[str, int] = defaultdict(int)
        self.correlation_id = uuid.uuid4()

    def envelope(self, event: DomainEvent, stream_id: str) -> Envelope:
        self.versions[stream_id] += 1
        return Envelope(
            event_id=uuid.uuid4(), event_type=event.TYPE, schema_version=event.VERSION,
            stream_id=stream_id, stream_type=stream_id.split("-")[0],
            stream_version=self.versions[stream_id], occurred_at=format_timestamp(utc_now()),
            correlation_id=self.correlation_id, causation_id=None, actor="system:test",
            data=canonical_json(event.payload()).decode("utf-8"))

    async def send(self, event: DomainEvent, stream_id: str | None = None) -> Outcome:
        outcome = await self.svc.consumer.handle(self.envelope(event, stream_id or _stream(event)))
        assert outcome == Outcome.APPLIED, outcome
        return outcome

    async def partner(self, partner_id: str, tier: str = "A", region: str = "east",
                      parent_id: str | None = None) -> None:
        await self.send(PartnerRegistered(
            partner_id=partner_id, name=partner_id, legal_id=f"L-{partner_id}", kind="distributor",
            tier=tier, region=region, territories=[region], categories=[], parent_id=parent_id,
            payment_terms=PaymentTerms(kind="credit", credit_limit_minor=10**9, term_days=30)))

    async def tier_change(self, partner_id: str, from_tier: str, to_tier: str) -> None:
        await self.send(PartnerTierChanged(partner_id=partner_id, from_tier=from_tier, to_tier=to_tier))

    async def invoice(self, invoice_id: str, partner_id: str, lines: list[tuple[str, int]],
                      issued_on: str = "2026-02-10", region: str = "east", tier: str = "A",
                      currency: str = "CNY") -> None:
        invoice_lines = [InvoiceLine(sku=f"SKU-{n}", category=category, qty=1, unit_price_minor=amount,
                                     line_total_minor=amount) for n, (category, amount) in enumerate(lines)]
        issued = date.fromisoformat(issued_on)
        await self.send(InvoiceIssued(
            invoice_id=invoice_id, order_id=f"ord-{invoice_id}", partner_id=partner_id,
            dispatch_id=f"dsp-{invoice_id}", lines=invoice_lines,
            total_minor=sum(amount for _, amount in lines), currency=currency, issued_on=issued,
            due_on=issued + timedelta(days=30), region=region, tier=tier))

    async def payment(self, payment_id: str, invoice_id: str, partner_id: str, amount_minor: int,
                      applied_on: str = "2026-02-20") -> None:
        await self.send(PaymentApplied(
            payment_id=payment_id, invoice_id=invoice_id, partner_id=partner_id,
            amount_minor=amount_minor, applied_on=date.fromisoformat(applied_on)))

    async def advance(self, invoice_id: str | None, partner_id: str, amount_minor: int) -> None:
        await self.send(AdvanceApplied(partner_id=partner_id, invoice_id=invoice_id,
                                       order_id=None if invoice_id else "ord-x", amount_minor=amount_minor))

    async def paid(self, invoice_id: str, partner_id: str, on_time: bool,
                   paid_on: str = "2026-03-01") -> None:
        await self.send(InvoicePaid(invoice_id=invoice_id, partner_id=partner_id,
                                    paid_on=date.fromisoformat(paid_on), on_time=on_time))

    async def credit_note(self, credit_note_id: str, partner_id: str, lines: list[tuple[str, int]],
                          issued_on: str = "2026-03-05", source_kind: str = "return",
                          source_ref: str = "ret-1", amount_minor: int | None = None,
                          order_id: str | None = None) -> None:
        note_lines = [InvoiceLine(sku=f"SKU-{n}", category=category, qty=1, unit_price_minor=amount,
                                  line_total_minor=amount) for n, (category, amount) in enumerate(lines)]
        await self.send(CreditNoteIssued(
            credit_note_id=credit_note_id, partner_id=partner_id,
            amount_minor=amount_minor if amount_minor is not None else sum(a for _, a in lines),
            reason="returned goods", source_kind=source_kind,  # type: ignore[arg-type]
            source_ref=source_ref, issued_on=date.fromisoformat(issued_on), order_id=order_id,
            lines=note_lines))


def _stream(event: DomainEvent) -> str:
    partner_id = getattr(event, "partner_id", "x")
    invoice_id = getattr(event, "invoice_id", None)
    if isinstance(event, (PartnerRegistered, PartnerTierChanged)):
        return f"partner-{partner_id}"
    return f"invoice-{invoice_id}" if invoice_id else f"account-{partner_id}"


def program_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Q1 volume", "starts_on": "2026-01-01", "ends_on": "2026-03-31",
        "basis": "invoiced", "mode": "retroactive", "tiers": TIERS,
    }
    body.update(overrides)
    return body


async def accrual(svc: RunningService, headers: dict[str, str], program_id: str,
                  partner_id: str) -> dict[str, Any]:
    response = await svc.client.get("/v1/accruals", headers=headers,
                                    params={"program_id": program_id, "partner_id": partner_id})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == 1, items
    return items[0]


async def stored(svc: RunningService, event_type: str) -> list[Any]:
    """``(data, correlation_id, causation_id, actor)`` of the events of one type the service appended.

    Read straight from the table, in append order: ``read_all``'s commit horizon waits
    for every open transaction on a shared PostgreSQL server, other test runs' too.
    """
    query = select(events.c.data, events.c.correlation_id, events.c.causation_id, events.c.actor).where(
        events.c.event_type == event_type).order_by(events.c.position)
    async with svc.ctx.db.read() as conn:
        return list((await conn.execute(query)).all())


async def stored_events(svc: RunningService, event_type: str) -> list[dict[str, Any]]:
    """The payloads of :func:`stored`."""
    return [parse_json(row.data) for row in await stored(svc, event_type)]
