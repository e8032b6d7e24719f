"""Helpers of the orders suites: foreign events fed to the consumer, partner keys, a catalog."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, date, datetime
from typing import Any

from libs.events.base import DomainEvent, EventMetadata
from libs.events.envelope import Envelope
from libs.events.partners import AgreementSigned, KeyIssued, PartnerRegistered
from libs.events.values import PaymentTerms
from libs.messaging.consumer import Outcome
from libs.runtime.auth import hash_secret
from libs.store.database import Database
from libs.store.store import EventStore
from tests.service_support import ADMIN, RunningService


class Publisher:
    """Appends other services' events to a scratch store and hands them to the orders consumer."""

    def __init__(self, db: Database, svc: RunningService) -> None:
        self.store = EventStore(db)
        self.svc = svc
        self.sent: list[Envelope] = []

    async def emit(self, stream_id: str, *events: DomainEvent,
                   correlation_id: uuid.UUID | None = None) -> list[Outcome]:
        meta = EventMetadata(actor="system:test", **(
            {"correlation_id": correlation_id} if correlation_id else {}))
        envelopes = await self.store.append(stream_id, stream_id.split("-")[0], None, events, meta)
        self.sent += envelopes
        return [await self.svc.consumer.handle(envelope) for envelope in envelopes]

    async def partner(self, partner_id: str, *, status: str = "active", tier: str = "gold",
                      territories: tuple[str, ...] = ("east",), categories: tuple[str, ...] = (),
                      payment: str = "credit") -> None:
        """A partner registered and, unless ``status`` is ``applied``, signed into ``status``."""
        events: list[DomainEvent] = [PartnerRegistered(
            partner_id=partner_id, name=f"{partner_id} Ltd", legal_id=f"LEGAL-{partner_id}",
            kind="distributor", tier=tier, region="east", territories=list(territories),
            categories=list(categories), payment_terms=PaymentTerms(kind=payment))]  # type: ignore[arg-type]
        if status != "applied":
            events.append(AgreementSigned(
                partner_id=partner_id, agreement_id=f"agr-{partner_id}", kind="annual",
                starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31), status_after=status))  # type: ignore[arg-type]
        await self.emit(f"partner-{partner_id}", *events)

    async def key(self, role: str, partner_id: str | None = None) -> dict[str, str]:
        """A key issued by partners (as its event), loaded by the orders key ring: its headers."""
        secret = secrets.token_hex(16)
        await self.emit(f"key-{uuid.uuid4().hex[:8]}", KeyIssued(
            key_id=uuid.uuid4().hex[:12], role=role, partner_id=partner_id,  # type: ignore[arg-type]
            secret_sha256=hash_secret(secret)))
        await self.svc.ctx.keyring.refresh()
        return {"Authorization": f"Bearer {secret}"}


def on_day(svc: RunningService, day: date) -> None:
    """Make ``svc``'s today ``day`` (prices in force are chosen by it)."""
    svc.ctx.clock = lambda: datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


async def add_product(svc: RunningService, sku: str, list_price_minor: int, *,
                      category: str = "pumps", **more: Any) -> dict[str, Any]:
    body = {"sku": sku, "name": f"Product {sku}", "category": category,
            "list_price_minor": list_price_minor, **more}
    response = await svc.client.post("/v1/products", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


async def publish_prices(svc: RunningService, tier: str, effective_from: str, discount_bp: int,
                         overrides: dict[str, int] | None = None,
                         override_reason: str | None = "test catalog") -> dict[str, Any]:
    """Publish a version; ``override_reason`` (given by default) waives the notice period."""
    body = {"effective_from": effective_from, "discount_bp": discount_bp,
            "overrides": [{"sku": s, "unit_price_minor": p} for s, p in (overrides or {}).items()],
            **({"override_reason": override_reason} if override_reason else {})}
    response = await svc.client.put(f"/v1/price-lists/{tier}", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def order_body(*lines: tuple[str, int], region: str = "east", **more: Any) -> dict[str, Any]:
    return {"partner_ref": "PO-1", "lines": [{"sku": s, "qty": q} for s, q in lines],
            "ship_to": {"region": region, "address": "1 Bund Rd"}, **more}


async def place(svc: RunningService, headers: dict[str, str], *lines: tuple[str, int],
                **more: Any) -> dict[str, Any]:
    response = await svc.client.post("/v1/orders", json=order_body(*lines, **more), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()
