"""A shipment (stream ``shipment-<id>``): what an approved order still has to ship, and its proof.

Rules
- An approved order gets one shipment, status ``pending``, with the order's lines.
- The warehouse dispatches all or part of it, any number of times; each
  dispatch names skus on the shipment and at most what **remains** of each,
  else 409 ``exceeds-remaining`` (a sku not on the shipment remains 0). Each
  dispatch is its own fact with the date it left (``dispatched_on``, invoiced
  on that day), what remains after it, and ``complete`` once nothing does.
- Status: ``pending`` → ``partially_dispatched`` → ``dispatched`` →
  ``delivered``; or ``cancelled`` when the order is cancelled or rejected
  before it shipped completely (nothing more ships then).
- Proof of delivery (``delivered_at``, ``signed_by``) only after the complete
  dispatch, once, and not dated before the last dispatch.
- A shipment's ``purpose`` is ``sale`` (an approved order's, invoiced on each
  dispatch) or, for a return, ``replacement`` (an exchange's new goods) or
  ``repair`` (the partner's repaired goods); those two move no money. A
  replacement ships from available stock only (409 ``insufficient-stock``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from libs.events.base import DomainEvent
from libs.events.delivery import ShipmentCreated, ShipmentDelivered, ShipmentDispatched
from libs.events.values import ShipmentPurpose
from services.delivery.domain.errors import (
    AlreadyDelivered,
    DeliveredBeforeDispatch,
    ExceedsRemaining,
    InsufficientStock,
    NotFullyDispatched,
    ShipmentCancelled,
)
from services.delivery.domain.quantities import Tally, as_lines, frozen, minus, plus, tally

PENDING, PARTIAL, DISPATCHED, DELIVERED, CANCELLED = (
    "pending", "partially_dispatched", "dispatched", "delivered", "cancelled")


@dataclass(frozen=True)
class Shipment:
    shipment_id: str = ""
    order_id: str = ""
    partner_id: str = ""
    lines: tuple[tuple[str, int], ...] = ()
    dispatched: tuple[tuple[str, int], ...] = ()
    dispatch_count: int = 0
    last_dispatched_on: date | None = None
    delivered: bool = False
    purpose: ShipmentPurpose = "sale"
    return_id: str | None = None

    @property
    def exists(self) -> bool:
        return bool(self.shipment_id)

    @property
    def remaining(self) -> Tally:
        return minus(dict(self.lines), dict(self.dispatched))

    @property
    def complete(self) -> bool:
        return self.exists and not any(self.remaining.values())

    def status(self, cancelled: bool = False) -> str:
        if self.delivered:
            return DELIVERED
        if self.complete:
            return DISPATCHED
        if cancelled:
            return CANCELLED
        return PARTIAL if self.dispatch_count else PENDING


def evolve_shipment(state: Shipment, event: DomainEvent) -> Shipment:
    if isinstance(event, ShipmentCreated):
        return Shipment(shipment_id=event.shipment_id, order_id=event.order_id,
                        partner_id=event.partner_id, lines=frozen(tally(event.lines)),
                        purpose=event.purpose, return_id=event.return_id)
    if isinstance(event, ShipmentDispatched):
        shipped = plus(dict(state.dispatched), tally(event.lines))
        return replace(state, dispatched=frozen(shipped), dispatch_count=state.dispatch_count + 1,
                       last_dispatched_on=event.dispatched_on)
    if isinstance(event, ShipmentDelivered):
        return replace(state, delivered=True)
    return state


def decide_creation(
    state: Shipment, shipment_id: str, order_id: str, partner_id: str, lines: Mapping[str, int],
    purpose: ShipmentPurpose = "sale", return_id: str | None = None,
) -> list[DomainEvent]:
    if state.exists:
        return []
    return [ShipmentCreated(shipment_id=shipment_id, order_id=order_id, partner_id=partner_id,
                            lines=as_lines(lines), purpose=purpose, return_id=return_id)]


def decide_dispatch(
    state: Shipment, *, lines: Mapping[str, int], carrier: str, tracking_no: str,
    dispatch_id: str, today: date, cancelled: bool, available: Mapping[str, int] | None = None,
) -> list[DomainEvent]:
    """Ship ``lines`` (sku -> qty > 0) out of what remains (a replacement: out of ``available``)."""
    if state.delivered:
        raise AlreadyDelivered(f"shipment {state.shipment_id} was already delivered")
    if cancelled and not state.complete:
        raise ShipmentCancelled(f"the order of shipment {state.shipment_id} was cancelled")
    remaining = state.remaining
    too_much = [{"sku": sku, "qty": qty, "remaining": remaining.get(sku, 0)}
                for sku, qty in lines.items() if qty > remaining.get(sku, 0)]
    if too_much:
        raise ExceedsRemaining(f"shipment {state.shipment_id} has less left to ship than asked",
                               lines=too_much)
    if state.purpose == "replacement":
        stock = available or {}
        short = [{"sku": sku, "qty": qty, "available": max(0, stock.get(sku, 0))}
                 for sku, qty in lines.items() if qty > stock.get(sku, 0)]
        if short:
            raise InsufficientStock(f"replacement {state.shipment_id} needs more than is available",
                                    lines=short)
    after = minus(remaining, lines)
    return [ShipmentDispatched(
        shipment_id=state.shipment_id, order_id=state.order_id, partner_id=state.partner_id,
        dispatch_id=dispatch_id, lines=as_lines(lines), carrier=carrier, tracking_no=tracking_no,
        dispatched_on=today, remaining=as_lines(after), complete=not any(after.values()),
        purpose=state.purpose, return_id=state.return_id,
    )]


def decide_delivery(state: Shipment, delivered_at: datetime, signed_by: str) -> list[DomainEvent]:
    if state.delivered:
        raise AlreadyDelivered(f"shipment {state.shipment_id} was already delivered")
    if not state.complete:
        raise NotFullyDispatched(f"shipment {state.shipment_id} still has goods to dispatch",
                                 remaining=[line.model_dump() for line in as_lines(state.remaining)])
    moment = delivered_at.astimezone(UTC)
    if state.last_dispatched_on is not None and moment.date() < state.last_dispatched_on:
        raise DeliveredBeforeDispatch(
            f"delivered_at {moment.isoformat()} is before the last dispatch on "
            f"{state.last_dispatched_on.isoformat()}")
    return [ShipmentDelivered(shipment_id=state.shipment_id, order_id=state.order_id,
                              partner_id=state.partner_id, delivered_at=moment, signed_by=signed_by,
                              purpose=state.purpose, return_id=state.return_id)]
