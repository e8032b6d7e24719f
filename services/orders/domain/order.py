"""An order after placement: its status follows stock, funds review and shipment, guarded by state.

``placed`` → ``confirmed`` (stock allocated) or ``backordered`` (→ ``confirmed`` when stock
comes in) → funds review: ``approved``, ``credit_hold`` or ``awaiting_funds`` (a held or
awaiting order may still pass, be re-held or be rejected) → ``partially_shipped`` →
``shipped`` → ``delivered``; or ``cancelled`` (before any dispatch; when its partner is
terminated, also after a partial one: the unshipped remainder) or ``rejected`` (by
finance). A fact arriving for an order in a state it no longer applies to (a late funds
review for a cancelled order, a repeated dispatch) changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from libs.events.base import DomainEvent
from libs.events.orders import (
    OrderApproved,
    OrderAwaitingFunds,
    OrderBackordered,
    OrderCancelled,
    OrderConfirmed,
    OrderCreditHeld,
    OrderDelivered,
    OrderPartiallyShipped,
    OrderPlaced,
    OrderRejected,
    OrderShipped,
)
from libs.events.values import HoldReason, SkuQty
from services.orders.domain.errors import OrderNotCancellable, OrderNotFound

OrderStatus = Literal["placed", "confirmed", "backordered", "awaiting_funds", "credit_hold",
                     "approved", "partially_shipped", "shipped", "delivered", "cancelled", "rejected"]
IN_FUNDS_REVIEW = ("confirmed", "credit_hold", "awaiting_funds")
SHIPPABLE = ("approved", "partially_shipped")
CANCELLABLE = ("placed", "confirmed", "backordered", "awaiting_funds", "credit_hold", "approved")
OPEN = (*CANCELLABLE, "partially_shipped")
"""Not shipped completely, not closed: what a partner's termination cancels."""

STATUS_AFTER: dict[type[DomainEvent], str] = {
    OrderPlaced: "placed", OrderConfirmed: "confirmed", OrderBackordered: "backordered",
    OrderAwaitingFunds: "awaiting_funds", OrderCreditHeld: "credit_hold", OrderApproved: "approved",
    OrderPartiallyShipped: "partially_shipped", OrderShipped: "shipped",
    OrderDelivered: "delivered", OrderCancelled: "cancelled", OrderRejected: "rejected",
}


@dataclass(frozen=True)
class Line:
    sku: str
    qty: int
    category: str
    unit_price_minor: int
    line_total_minor: int
    shipped_qty: int = 0


@dataclass(frozen=True)
class Order:
    """``status`` is ``""`` while the order does not exist."""

    order_id: str = ""
    partner_id: str = ""
    partner_ref: str = ""
    status: str = ""
    lines: tuple[Line, ...] = ()
    total_minor: int = 0
    currency: str = ""
    ship_to_region: str = ""
    ship_to_address: str | None = None
    payment_kind: str = ""
    dispatch_ids: frozenset[str] = frozenset()
    dispatched: bool = False
    hold_reason: str | None = None
    closing_reason: str | None = None
    price_list_version: int | None = None
    deal_id: str | None = None

    @property
    def exists(self) -> bool:
        return bool(self.status)

    def shipped(self, dispatched: Sequence[SkuQty]) -> tuple[Line, ...]:
        more = {line.sku: line.qty for line in dispatched}
        return tuple(replace(line, shipped_qty=line.shipped_qty + more.get(line.sku, 0))
                     for line in self.lines)


def evolve(order: Order, event: DomainEvent) -> Order:
    """Pure and total: an event that is not about an order's state leaves it as is."""
    status = STATUS_AFTER.get(type(event))
    if status is None:
        return order
    if isinstance(event, OrderPlaced):
        return Order(
            order_id=event.order_id, partner_id=event.partner_id, partner_ref=event.partner_ref,
            status=status, lines=tuple(Line(line.sku, line.qty, line.category, line.unit_price_minor,
                                            line.line_total_minor) for line in event.lines),
            total_minor=event.total_minor, currency=event.currency,
            ship_to_region=event.ship_to_region, ship_to_address=event.ship_to_address,
            payment_kind=event.payment_kind, price_list_version=event.price_list_version,
            deal_id=event.deal_id)
    order = replace(order, status=status)
    if isinstance(event, OrderCreditHeld):
        return replace(order, hold_reason=event.reason)
    if isinstance(event, OrderPartiallyShipped | OrderShipped):
        ids = order.dispatch_ids | ({event.dispatch_id} if event.dispatch_id else set())
        return replace(order, lines=order.shipped(event.lines), dispatched=True, dispatch_ids=ids)
    if isinstance(event, OrderCancelled | OrderRejected):
        return replace(order, closing_reason=event.reason)
    return order


def _require(order: Order) -> None:
    if not order.exists:
        raise OrderNotFound("no such order")


def decide_cancel(order: Order, reason: str) -> list[OrderCancelled]:
    """Cancel while nothing was dispatched and the order is not rejected, cancelled or delivered."""
    _require(order)
    if order.dispatched or order.status not in CANCELLABLE:
        raise OrderNotCancellable(f"order {order.order_id} is {order.status}; "
                                  "it can be cancelled only before any dispatch",
                                  order_status=order.status)
    return [OrderCancelled(order_id=order.order_id, partner_id=order.partner_id, reason=reason)]


def decide_close_for_terminated_partner(order: Order, reason: str) -> list[DomainEvent]:
    """A terminated partner's order that has not shipped completely is cancelled: before any
    dispatch as a whole, after a partial one its unshipped remainder (what was dispatched
    stays shipped and invoiced). Shipped, delivered, cancelled and rejected orders stay as
    they are."""
    if order.status not in OPEN:
        return []
    return [OrderCancelled(order_id=order.order_id, partner_id=order.partner_id, reason=reason)]


# -- reactions: what another service's fact means for the order ----------------------


def when_stock_allocated(order: Order) -> list[DomainEvent]:
    """A placed or backordered order is confirmed once its stock is allocated."""
    return [OrderConfirmed(order_id=order.order_id)] if order.status in ("placed", "backordered") else []


def when_stock_backordered(order: Order) -> list[DomainEvent]:
    return [OrderBackordered(order_id=order.order_id)] if order.status == "placed" else []


def when_funds_review_passed(order: Order) -> list[DomainEvent]:
    """Confirmed, held or awaiting funds → approved."""
    return [OrderApproved(order_id=order.order_id)] if order.status in IN_FUNDS_REVIEW else []


def when_put_on_hold(order: Order, reason: HoldReason) -> list[DomainEvent]:
    """An order in funds review goes on hold; a held one is held again when the reason changes
    (a suspension holds it, a reinstatement names what still holds it)."""
    if order.status not in IN_FUNDS_REVIEW or (order.status == "credit_hold" and order.hold_reason == reason):
        return []
    return [OrderCreditHeld(order_id=order.order_id, reason=reason)]


def when_awaiting_prepayment(order: Order) -> list[DomainEvent]:
    if order.status not in IN_FUNDS_REVIEW or order.status == "awaiting_funds":
        return []
    return [OrderAwaitingFunds(order_id=order.order_id)]


def when_rejected_by_finance(order: Order, reason: str) -> list[DomainEvent]:
    """Finance may reject an order still in funds review; it then never ships."""
    if order.status not in IN_FUNDS_REVIEW:
        return []
    return [OrderRejected(order_id=order.order_id, reason=reason)]


def when_dispatched(order: Order, dispatch_id: str, lines: Sequence[SkuQty],
                    complete: bool) -> list[DomainEvent]:
    """Each new dispatch of an approved order: shipped when nothing remains, else partially."""
    if order.status not in SHIPPABLE or dispatch_id in order.dispatch_ids:
        return []
    everything = all(line.shipped_qty >= line.qty for line in order.shipped(lines))
    kind = OrderShipped if complete or everything else OrderPartiallyShipped
    return [kind(order_id=order.order_id, dispatch_id=dispatch_id, lines=list(lines))]


def when_delivered(order: Order) -> list[DomainEvent]:
    return [OrderDelivered(order_id=order.order_id)] if order.status == "shipped" else []
