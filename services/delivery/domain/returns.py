"""A return of goods (stream ``return-<id>``): requested by the partner, received by the warehouse.

Rules
- Only goods dispatched for the order can come back: per sku, a return names
  at most what was dispatched minus what earlier returns already claimed (the
  requested quantity while a return is open, the received quantity once it is
  received), else 409 ``exceeds-returnable``.
- ``kind`` is refund, exchange or repair; a received refund return yields a
  credit note and reverses rebate (in credit and rebates).
- The warehouse receives a return once, for at most what it requested, sku by
  sku (409 ``exceeds-requested``); received goods go back on hand. Status:
  ``requested`` → ``received``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import cast

from libs.events.base import DomainEvent
from libs.events.delivery import ReturnReceived, ReturnRequested
from libs.events.values import ReturnKind
from services.delivery.domain.errors import (
    ExceedsRequested,
    ExceedsReturnable,
    ReturnAlreadyReceived,
)
from services.delivery.domain.quantities import Tally, as_lines, frozen, tally

REQUESTED, RECEIVED = "requested", "received"


@dataclass(frozen=True)
class GoodsReturn:
    return_id: str = ""
    order_id: str = ""
    partner_id: str = ""
    kind: str = ""
    status: str = ""
    requested: tuple[tuple[str, int], ...] = ()
    received: tuple[tuple[str, int], ...] = ()

    @property
    def claimed(self) -> Tally:
        """What this return takes off the order's returnable goods."""
        return dict(self.received if self.status == RECEIVED else self.requested)


def evolve_return(state: GoodsReturn, event: DomainEvent) -> GoodsReturn:
    if isinstance(event, ReturnRequested):
        return GoodsReturn(return_id=event.return_id, order_id=event.order_id,
                           partner_id=event.partner_id, kind=event.kind, status=REQUESTED,
                           requested=frozen(tally(event.lines)))
    if isinstance(event, ReturnReceived):
        return replace(state, status=RECEIVED, received=frozen(tally(event.lines)))
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
    if state.status == RECEIVED:
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
