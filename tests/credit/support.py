"""Test helpers for credit: a fake publisher of the other services' events, keys, a fixed clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from aiokafka import ConsumerRecord

from libs.events.base import DomainEvent, format_timestamp, utc_now
from libs.events.codec import canonical_json
from libs.events.delivery import ReturnReceived, ShipmentDispatched
from libs.events.envelope import Envelope
from libs.events.orders import OrderCancelled, OrderConfirmed, OrderPlaced
from libs.events.partners import KeyIssued, PartnerRegistered, PartnerTierChanged
from libs.events.rebates import SettlementApproved
from libs.events.values import OrderLine, PaymentTerms, ShipmentPurpose, SkuQty
from libs.messaging.consumer import Outcome
from libs.runtime.auth import hash_secret
from services.credit.domain.account import stream_id
from tests.service_support import RunningService

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
TODAY = NOW.date()
OPENED_DAYS_AGO = 60
"""``Feed.register`` opens accounts this many days before the clock's today, so receipts may be
backdated as far as the receipt window allows."""


def fix_clock(svc: RunningService, moment: datetime = NOW) -> None:
    svc.ctx.clock = lambda: moment


class Feed:
    """Builds the envelopes other services would publish and hands them to credit's consumer."""

    def __init__(self, svc: RunningService) -> None:
        self.svc = svc
        self.versions: dict[str, int] = {}
        self.orders: dict[str, OrderPlaced] = {}
        self._held: list[Envelope] | None = None

    def envelope(self, stream: str, event: DomainEvent, stream_type: str = "order") -> Envelope:
        version = self.versions.get(stream, 0) + 1
        self.versions[stream] = version
        return Envelope(
            event_id=uuid.uuid4(),
            event_type=event.TYPE,
            schema_version=event.VERSION,
            stream_id=stream,
            stream_type=stream_type,
            stream_version=version,
            occurred_at=format_timestamp(utc_now()),
            correlation_id=uuid.uuid4(),
            causation_id=None,
            actor="test:feed",
            data=canonical_json(event.payload()).decode(),
        )

    async def emit(self, stream: str, event: DomainEvent, stream_type: str = "order") -> Outcome:
        envelope = self.envelope(stream, event, stream_type)
        if self._held is not None:
            self._held.append(envelope)
            return Outcome.APPLIED
        outcome = await self.svc.consumer.handle(envelope)
        assert outcome in (Outcome.APPLIED, Outcome.IGNORED, Outcome.DUPLICATE), outcome
        return outcome

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[list[Envelope]]:
        """``async with feed.batch():`` the events emitted inside are handed to the consumer
        together when the block ends, as one poll of the broker (``apply_records``: batches of
        ``batch_events``, one transaction each); yields the envelopes."""
        self._held = held = []
        try:
            yield held
        finally:
            self._held = None
        records = [ConsumerRecord("feed", 0, offset, 0, 0, e.stream_id.encode(), e.to_wire(), None,
                                  len(e.stream_id), len(e.to_wire()), [("event_type", e.event_type.encode())])
                   for offset, e in enumerate(held)]
        await self.svc.consumer.apply_records(records)

    async def register(
        self,
        partner_id: str,
        kind: str = "credit",
        limit: int = 100_000,
        term: int = 30,
        tier: str = "A",
        region: str = "east",
        days_ago: int = OPENED_DAYS_AGO,
    ) -> None:
        """Register a partner: credit opens its account ``days_ago`` days before today."""
        clock = self.svc.ctx.clock
        self.svc.ctx.clock = lambda: clock() - timedelta(days=days_ago)
        try:
            await self._register(partner_id, kind, limit, term, tier, region)
        finally:
            self.svc.ctx.clock = clock

    async def _register(self, partner_id: str, kind: str, limit: int, term: int, tier: str, region: str
                        ) -> None:
        terms = (
            PaymentTerms(kind="credit", credit_limit_minor=limit, term_days=term)
            if kind == "credit"
            else PaymentTerms(kind="prepaid")
        )
        await self.emit(
            f"partner-{partner_id}",
            PartnerRegistered(
                partner_id=partner_id,
                name=f"Partner {partner_id}",
                legal_id="LEGAL",
                kind="distributor",
                tier=tier,
                region=region,
                territories=[region],
                categories=[],
                payment_terms=terms,
            ),
            "partner",
        )

    async def change_tier(self, partner_id: str, to_tier: str) -> None:
        await self.emit(
            f"partner-{partner_id}",
            PartnerTierChanged(partner_id=partner_id, from_tier="A", to_tier=to_tier),
            "partner",
        )

    async def place(self, order_id: str, partner_id: str, lines: dict[str, tuple[int, int]]) -> OrderPlaced:
        """``lines``: sku -> (qty, unit price)."""
        placed = OrderPlaced(
            order_id=order_id,
            partner_id=partner_id,
            partner_ref=f"PO-{order_id}",
            lines=[
                OrderLine(
                    sku=sku,
                    qty=qty,
                    category=f"cat-{sku}",
                    unit_price_minor=unit,
                    line_total_minor=qty * unit,
                )
                for sku, (qty, unit) in lines.items()
            ],
            ship_to_region="east",
            total_minor=sum(q * u for q, u in lines.values()),
            payment_kind="credit",
        )
        self.orders[order_id] = placed
        await self.emit(f"order-{order_id}", placed)
        return placed

    async def confirm(self, order_id: str) -> Outcome:
        return await self.emit(f"order-{order_id}", OrderConfirmed(order_id=order_id))

    async def order(self, order_id: str, partner_id: str, total: int) -> None:
        """Place and confirm a one-line order of ``total`` (10 x total/10 when divisible)."""
        lines = {"SKU-1": (10, total // 10)} if total % 10 == 0 else {"SKU-1": (1, total)}
        await self.place(order_id, partner_id, lines)
        await self.confirm(order_id)

    async def cancel(self, order_id: str, partner_id: str) -> None:
        await self.emit(
            f"order-{order_id}",
            OrderCancelled(order_id=order_id, partner_id=partner_id, reason="changed mind"),
        )

    async def dispatch(
        self,
        order_id: str,
        lines: dict[str, int],
        on: date = TODAY,
        dispatch_id: str | None = None,
        complete: bool = False,
        purpose: ShipmentPurpose = "sale",
        return_id: str | None = None,
    ) -> str:
        placed = self.orders[order_id]
        dispatch_id = dispatch_id or f"dsp_{uuid.uuid4().hex[:8]}"
        shipment_id = f"shp_{order_id}" if purpose == "sale" else f"shp_{return_id}"
        await self.emit(
            f"shipment-{order_id if purpose == 'sale' else shipment_id}",
            ShipmentDispatched(
                shipment_id=shipment_id,
                order_id=order_id,
                partner_id=placed.partner_id,
                dispatch_id=dispatch_id,
                lines=[SkuQty(sku=s, qty=q) for s, q in lines.items()],
                carrier="SF",
                tracking_no="T1",
                dispatched_on=on,
                remaining=[],
                complete=complete,
                purpose=purpose,
                return_id=return_id,
            ),
            "shipment",
        )
        return dispatch_id

    async def ship_all(self, order_id: str, on: date = TODAY) -> str:
        placed = self.orders[order_id]
        return await self.dispatch(order_id, {line.sku: line.qty for line in placed.lines}, on, complete=True)

    async def return_received(
        self,
        order_id: str,
        lines: dict[str, int],
        kind: str = "refund",
        on: date = TODAY,
        return_id: str | None = None,
    ) -> str:
        placed = self.orders[order_id]
        return_id = return_id or f"ret_{uuid.uuid4().hex[:8]}"
        await self.emit(
            f"return-{return_id}",
            ReturnReceived(
                return_id=return_id,
                order_id=order_id,
                partner_id=placed.partner_id,
                kind=kind,
                lines=[SkuQty(sku=s, qty=q) for s, q in lines.items()],  # type: ignore[arg-type]
                received_on=on,
            ),
            "return",
        )
        return return_id

    async def settlement_approved(self, partner_id: str, payout: int, settlement_id: str = "stl_1") -> None:
        await self.emit(
            f"settlement-{settlement_id}",
            SettlementApproved(
                settlement_id=settlement_id,
                program_id="prg_1",
                partner_id=partner_id,
                payout_minor=payout,
                approved_by="finance:k2",
            ),
            "settlement",
        )

    async def key(self, role: str, partner_id: str | None = None) -> dict[str, str]:
        """Bearer headers of a fresh key of ``role`` (bound to ``partner_id`` for partners)."""
        secret = f"secret-{uuid.uuid4().hex}"
        key_id = f"key_{uuid.uuid4().hex[:8]}"
        await self.emit(
            f"key-{key_id}",
            KeyIssued(
                key_id=key_id,
                role=role,
                partner_id=partner_id,  # type: ignore[arg-type]
                secret_sha256=hash_secret(secret),
            ),
            "key",
        )
        await self.svc.ctx.keyring.refresh()
        return {"Authorization": f"Bearer {secret}"}


async def account_events(svc: RunningService, partner_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The account stream as (type, payload) pairs."""
    return [(e.event_type, e.payload()) for e in await svc.ctx.store.load(stream_id(partner_id))]


async def types(svc: RunningService, partner_id: str) -> list[str]:
    return [t for t, _ in await account_events(svc, partner_id)]


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


async def pay(
    svc: RunningService,
    finance: dict[str, str],
    partner_id: str,
    amount: int,
    bank_ref: str | None = None,
    received_on: date = TODAY,
    **extra: Any,
) -> httpx.Response:
    return await svc.client.post(
        "/v1/payments",
        headers=finance,
        json={
            "partner_id": partner_id,
            "amount_minor": amount,
            "bank_ref": bank_ref or uuid.uuid4().hex,
            "received_on": received_on.isoformat(),
            **extra,
        },
    )


async def account(svc: RunningService, headers: dict[str, str], partner_id: str) -> dict[str, Any]:
    return ok(await svc.client.get(f"/v1/accounts/{partner_id}", headers=headers))


async def invoices(svc: RunningService, headers: dict[str, str], partner_id: str) -> list[dict[str, Any]]:
    """The partner's invoices, oldest first."""
    items = ok(await svc.client.get("/v1/invoices", headers=headers, params={"partner_id": partner_id}))[
        "items"
    ]
    return sorted(items, key=lambda i: (i["issued_on"], i["total_minor"]))
