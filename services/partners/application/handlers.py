"""Reactions of the partners service to other services' events, in one visible table.

Key events are handled by the runtime for every service (``libs.runtime.auth``).
"""

from __future__ import annotations

from collections.abc import Mapping

from libs.events.orders import DealConflictRecorded, TerritoryViolationRecorded
from libs.messaging.consumer import Delivery, Handler
from services.partners.application.read_models import record_violation


async def when_territory_violation_recorded_note_violation(delivery: Delivery) -> None:
    """A refused cross-territory order joins the partner's violation history (once per event)."""
    event = delivery.event
    assert isinstance(event, TerritoryViolationRecorded)
    await record_violation(delivery.conn, event.partner_id, {
        "event_id": str(delivery.envelope.event_id),
        "partner_ref": event.partner_ref,
        "region": event.region,
        "territories": event.territories,
        "recorded_at": delivery.envelope.occurred_at,
        "correlation_id": str(delivery.envelope.correlation_id),
    })


async def when_deal_conflict_recorded_note_violation(delivery: Delivery) -> None:
    """A deal registration refused as a channel conflict joins the partner's violation history."""
    event = delivery.event
    assert isinstance(event, DealConflictRecorded)
    await record_violation(delivery.conn, event.partner_id, {
        "event_id": str(delivery.envelope.event_id),
        "kind": "deal_conflict",
        "end_customer": event.end_customer,
        "skus": event.skus,
        "recorded_at": delivery.envelope.occurred_at,
        "correlation_id": str(delivery.envelope.correlation_id),
    })


HANDLERS: Mapping[str, Handler] = {
    TerritoryViolationRecorded.TYPE: when_territory_violation_recorded_note_violation,
    DealConflictRecorded.TYPE: when_deal_conflict_recorded_note_violation,
}
