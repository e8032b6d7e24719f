"""A return of goods (stream ``return-<id>``): requested, received, inspected, and sent back by kind.

Rules
- Only goods dispatched for the order can come back: per sku, a return names
  at most what was dispatched minus what earlier returns already claimed (the
  requested quantity while a return is open, the received quantity once it is
  received), else 409 ``exceeds-returnable``.
- ``kind`` is refund, exchange or repair; a received refund return yields a
  credit note and reverses rebate (in credit and rebates). An exchange or a
  repair moves no money.
- The warehouse receives a return once, for at most what it requested, sku by
  sku (409 ``exceeds-requested``). Received goods go to the inspection
  location: they are not sellable stock.
- Inspection, once (409 ``return-not-received``, ``return-already-inspected``),
  accounts for every received unit, sku by sku (409 ``exceeds-received``,
  ``inspection-incomplete``): a refund or exchange unit is restocked (sellable
  again) or scrapped; a repair unit is repaired (it stays the partner's), 409
  ``outcome-not-for-kind`` otherwise.
- An inspected exchange gets a replacement shipment of every received unit, an
  inspected repair a shipment of its repaired units; neither is invoiced. When
  that shipment has left completely the return is ``replacement_shipped`` or
  ``repaired_shipped``.

Status: ``requested`` → ``received`` → ``inspected`` → (exchange)
``replacement_shipped``, (repair) ``repaired_shipped``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import cast

from libs.events.base import DomainEvent
from libs.events.delivery import (
    ReturnGoodsDispatched,
    ReturnInspected,
    ReturnReceived,
    ReturnRequested,
    ShipmentDispatched,
)
from libs.events.values import ReturnKind, ShipmentPurpose
from services.delivery.domain.errors import (
    ExceedsReceived,
    ExceedsRequested,
    ExceedsReturnable,
    InspectionIncomplete,
    OutcomeNotForKind,
    ReturnAlreadyInspected,
    ReturnAlreadyReceived,
    ReturnNotReceived,
)
from services.delivery.domain.quantities import Tally, as_lines, frozen, tally

REQUESTED, RECEIVED, INSPECTED = "requested", "received", "inspected"
REPLACEMENT_SHIPPED, REPAIRED_SHIPPED = "replacement_shipped", "repaired_shipped"
STATUSES = (REQUESTED, RECEIVED, INSPECTED, REPLACEMENT_SHIPPED, REPAIRED_SHIPPED)

SENT_BACK: Mapping[str, tuple[ShipmentPurpose, str]] = {
    "exchange": ("replacement", REPLACEMENT_SHIPPED),
    "repair": ("repair", REPAIRED_SHIPPED),
}
"""The kinds of return that ship goods back: the shipment's purpose and the status once it left."""


@dataclass(frozen=True)
class Outcome:
    """What inspection decided for the units of one sku."""

    restock: int = 0
    scrap: int = 0
    repaired: int = 0

    @property
    def total(self) -> int:
        return self.restock + self.scrap + self.repaired


@dataclass(frozen=True)
class GoodsReturn:
    return_id: str = ""
    order_id: str = ""
    partner_id: str = ""
    kind: str = ""
    status: str = ""
    requested: tuple[tuple[str, int], ...] = ()
    received: tuple[tuple[str, int], ...] = ()
    shipment_id: str | None = None

    @property
    def claimed(self) -> Tally:
        """What this return takes off the order's returnable goods."""
        return dict(self.requested if self.status == REQUESTED else self.received)


def evolve_return(state: GoodsReturn, event: DomainEvent) -> GoodsReturn:
    if isinstance(event, ReturnRequested):
        return GoodsReturn(return_id=event.return_id, order_id=event.order_id,
                           partner_id=event.partner_id, kind=event.kind, status=REQUESTED,
                           requested=frozen(tally(event.lines)))
    if isinstance(event, ReturnReceived):
        return replace(state, status=RECEIVED, received=frozen(tally(event.lines)))
    if isinstance(event, ReturnInspected):
        return replace(state, status=INSPECTED, shipment_id=event.shipment_id)
    if isinstance(event, ReturnGoodsDispatched) and event.complete:
        return replace(state, status=SENT_BACK[event.kind][1])
    return state


def returnable(dispatched: Mapping[str, int], claimed: Mapping[str, int]) -> Tally:
    return {sku: qty - claimed.get(sku, 0) for sku, qty in dispatched.items()}


def decide_request(
    *, return_id: str, order_id: str, partner_id: str, lines: Mapping[str, int], reason: str,
    kind: ReturnKind, dispatched: Mapping[str, int], claimed: Mapping[str, int],
) -> list[DomainEvent]:
    left = returnable(dispatched, claimed)
    too_much = [{"sku": sku, "qty": qty, "returnable": max(0, left.get(sku, 0))}
                for sku, qty in lines.items() if qty > left.get(sku, 0)]
    if too_much:
        raise ExceedsReturnable(f"order {order_id} has less dispatched and not returned than asked",
                                lines=too_much)
    return [ReturnRequested(return_id=return_id, order_id=order_id, partner_id=partner_id,
                            lines=as_lines(lines), reason=reason, kind=kind)]


def decide_receipt_of_return(
    state: GoodsReturn, lines: Mapping[str, int], today: date
) -> list[DomainEvent]:
    if state.status != REQUESTED:
        raise ReturnAlreadyReceived(f"return {state.return_id} was already received")
    requested = dict(state.requested)
    too_much = [{"sku": sku, "qty": qty, "requested": requested.get(sku, 0)}
                for sku, qty in lines.items() if qty > requested.get(sku, 0)]
    if too_much:
        raise ExceedsRequested(f"return {state.return_id} requested less than received",
                               lines=too_much)
    return [ReturnReceived(return_id=state.return_id, order_id=state.order_id,
                           partner_id=state.partner_id, kind=cast(ReturnKind, state.kind),
                           lines=as_lines(lines),
                           received_on=today)]


def _check_outcomes(state: GoodsReturn, outcomes: Mapping[str, Outcome]) -> None:
    received = dict(state.received)
    too_much = [{"sku": sku, "qty": outcome.total, "received": received.get(sku, 0)}
                for sku, outcome in outcomes.items() if outcome.total > received.get(sku, 0)]
    if too_much:
        raise ExceedsReceived(f"return {state.return_id} received less than inspected", lines=too_much)
    missing = [{"sku": sku, "qty": outcomes[sku].total if sku in outcomes else 0, "received": qty}
               for sku, qty in received.items()
               if (outcomes[sku].total if sku in outcomes else 0) < qty]
    if missing:
        raise InspectionIncomplete(f"return {state.return_id} has received units not inspected",
                                   lines=missing)
    repair = state.kind == "repair"
    wrong = [sku for sku, outcome in outcomes.items()
             if ((outcome.restock or outcome.scrap) if repair else outcome.repaired)]
    if wrong:
        allowed = "repaired" if repair else "restock or scrap"
        raise OutcomeNotForKind(f"a {state.kind} return's units are {allowed}", skus=wrong)


def decide_inspection(
    state: GoodsReturn, outcomes: Mapping[str, Outcome], today: date, shipment_id: str | None,
) -> list[DomainEvent]:
    """Record what became of each received unit; ``shipment_id`` is the shipment back, if any."""
    if state.status == REQUESTED:
        raise ReturnNotReceived(f"return {state.return_id} has not been received yet")
    if state.status != RECEIVED:
        raise ReturnAlreadyInspected(f"return {state.return_id} was already inspected")
    _check_outcomes(state, outcomes)
    return [ReturnInspected(
        return_id=state.return_id, order_id=state.order_id, partner_id=state.partner_id,
        kind=cast(ReturnKind, state.kind), inspected_on=today,
        restocked=as_lines({sku: o.restock for sku, o in outcomes.items()}),
        scrapped=as_lines({sku: o.scrap for sku, o in outcomes.items()}),
        repaired=as_lines({sku: o.repaired for sku, o in outcomes.items()}),
        shipment_id=shipment_id if state.kind in SENT_BACK else None)]


def goods_sent_back(state: GoodsReturn) -> Tally:
    """What the return's shipment carries back: a replacement of every received unit, or the
    repaired units (every received one); nothing for a refund."""
    return dict(state.received) if state.kind in SENT_BACK else {}


def decide_goods_dispatched(state: GoodsReturn, dispatched: ShipmentDispatched) -> list[DomainEvent]:
    """The return's shipment left (all or part): the partner's goods are on their way."""
    if state.kind not in SENT_BACK or dispatched.shipment_id != state.shipment_id:
        return []
    return [ReturnGoodsDispatched(
        return_id=state.return_id, order_id=state.order_id, partner_id=state.partner_id,
        kind=cast(ReturnKind, state.kind), shipment_id=dispatched.shipment_id,
        dispatch_id=dispatched.dispatch_id, lines=dispatched.lines, carrier=dispatched.carrier,
        tracking_no=dispatched.tracking_no, dispatched_on=dispatched.dispatched_on,
        complete=dispatched.complete)]
