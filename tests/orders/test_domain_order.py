"""An order's status, pure: given its events / when another service's fact / then its events."""

from __future__ import annotations

from collections.abc import Callable

import pytest

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
from libs.events.values import OrderLine, SkuQty
from services.orders.domain import order as rules
from services.orders.domain.errors import OrderNotCancellable, OrderNotFound
from services.orders.domain.order import Order, decide_cancel, evolve

PLACED = OrderPlaced(
    order_id="o1", partner_id="p1", partner_ref="PO", ship_to_region="east", total_minor=500,
    payment_kind="credit", lines=[
        OrderLine(sku="A", qty=3, category="c", unit_price_minor=100, line_total_minor=300),
        OrderLine(sku="B", qty=1, category="c", unit_price_minor=200, line_total_minor=200)])
CONFIRMED = OrderConfirmed(order_id="o1")
APPROVED = OrderApproved(order_id="o1")
PARTIAL = OrderPartiallyShipped(order_id="o1", dispatch_id="d1", lines=[SkuQty(sku="A", qty=1)])


def given(*events: DomainEvent) -> Order:
    order = Order()
    for event in events:
        order = evolve(order, event)
    return order


REACTIONS: dict[str, Callable[[Order], list[DomainEvent]]] = {
    "allocated": rules.when_stock_allocated,
    "backordered": rules.when_stock_backordered,
    "passed": rules.when_funds_review_passed,
    "held": lambda o: rules.when_put_on_hold(o, "over_limit"),
    "awaiting": rules.when_awaiting_prepayment,
    "rejected": lambda o: rules.when_rejected_by_finance(o, "too risky"),
    "dispatched": lambda o: rules.when_dispatched(o, "d9", [SkuQty(sku="A", qty=1)], False),
    "delivered": rules.when_delivered,
}


@pytest.mark.parametrize(("history", "fact", "then"), [
    ((PLACED,), "allocated", [CONFIRMED]),
    ((PLACED,), "backordered", [OrderBackordered(order_id="o1")]),
    ((PLACED, OrderBackordered(order_id="o1")), "allocated", [CONFIRMED]),
    ((PLACED, CONFIRMED), "passed", [APPROVED]),
    ((PLACED, CONFIRMED), "held", [OrderCreditHeld(order_id="o1", reason="over_limit")]),
    ((PLACED, CONFIRMED), "awaiting", [OrderAwaitingFunds(order_id="o1")]),
    ((PLACED, CONFIRMED), "rejected", [OrderRejected(order_id="o1", reason="too risky")]),
    ((PLACED, CONFIRMED, OrderCreditHeld(order_id="o1", reason="overdue")), "passed", [APPROVED]),
    ((PLACED, CONFIRMED, OrderAwaitingFunds(order_id="o1")), "passed", [APPROVED]),
    # held again when the reason changes (a suspension, then what still holds it)
    ((PLACED, CONFIRMED, OrderCreditHeld(order_id="o1", reason="partner_suspended")), "held",
     [OrderCreditHeld(order_id="o1", reason="over_limit")]),
    ((PLACED, CONFIRMED, OrderCreditHeld(order_id="o1", reason="partner_suspended")), "awaiting",
     [OrderAwaitingFunds(order_id="o1")]),
    ((PLACED, CONFIRMED, OrderAwaitingFunds(order_id="o1")), "rejected",
     [OrderRejected(order_id="o1", reason="too risky")]),
    ((PLACED, CONFIRMED, APPROVED), "dispatched",
     [OrderPartiallyShipped(order_id="o1", dispatch_id="d9", lines=[SkuQty(sku="A", qty=1)])]),
    ((PLACED, CONFIRMED, APPROVED, PARTIAL), "dispatched",
     [OrderPartiallyShipped(order_id="o1", dispatch_id="d9", lines=[SkuQty(sku="A", qty=1)])]),
    ((PLACED, CONFIRMED, APPROVED, OrderShipped(order_id="o1")), "delivered",
     [OrderDelivered(order_id="o1")]),
])
def test_status_moves_on_with_the_facts(history: tuple[DomainEvent, ...], fact: str,
                                        then: list[DomainEvent]) -> None:
    assert REACTIONS[fact](given(*history)) == then


CANCELLED = OrderCancelled(order_id="o1", partner_id="p1", reason="changed mind")


@pytest.mark.parametrize(("history", "fact"), [
    ((PLACED, CANCELLED), "allocated"),
    ((PLACED, CONFIRMED, CANCELLED), "passed"),        # a late funds review for a cancelled order
    ((PLACED, CONFIRMED, CANCELLED), "held"),
    ((PLACED, CONFIRMED, APPROVED), "allocated"),      # a repeated allocation
    ((PLACED, CONFIRMED), "backordered"),
    ((PLACED,), "passed"),                             # funds review before confirmation
    ((PLACED, CONFIRMED, OrderCreditHeld(order_id="o1", reason="over_limit")), "held"),
    ((PLACED, CONFIRMED, OrderAwaitingFunds(order_id="o1")), "awaiting"),
    ((PLACED, CONFIRMED, APPROVED), "rejected"),
    ((PLACED, CONFIRMED, OrderRejected(order_id="o1", reason="x")), "passed"),
    ((PLACED, CONFIRMED), "dispatched"),               # not approved yet
    ((PLACED, CONFIRMED, APPROVED, PARTIAL), "delivered"),
    ((PLACED, CONFIRMED, APPROVED, OrderShipped(order_id="o1"), OrderDelivered(order_id="o1")),
     "delivered"),
])
def test_a_fact_that_no_longer_applies_changes_nothing(history: tuple[DomainEvent, ...],
                                                       fact: str) -> None:
    assert REACTIONS[fact](given(*history)) == []


def test_the_dispatch_that_ships_the_rest_ships_the_order() -> None:
    order = given(PLACED, CONFIRMED, APPROVED, PARTIAL)
    rest = [SkuQty(sku="A", qty=2), SkuQty(sku="B", qty=1)]
    assert rules.when_dispatched(order, "d2", rest, True) == [
        OrderShipped(order_id="o1", dispatch_id="d2", lines=rest)]
    assert rules.when_dispatched(order, "d2", rest, False)[0].TYPE == "OrderShipped"  # nothing remains
    assert rules.when_dispatched(order, "d1", rest, True) == []  # the same dispatch again
    shipped = evolve(order, OrderShipped(order_id="o1", dispatch_id="d2", lines=rest))
    assert [(line.sku, line.shipped_qty) for line in shipped.lines] == [("A", 3), ("B", 1)]
    assert shipped.status == "shipped" and shipped.dispatch_ids == {"d1", "d2"}


@pytest.mark.parametrize("history", [
    (PLACED,), (PLACED, CONFIRMED), (PLACED, OrderBackordered(order_id="o1")),
    (PLACED, CONFIRMED, OrderCreditHeld(order_id="o1", reason="overdue")),
    (PLACED, CONFIRMED, OrderAwaitingFunds(order_id="o1")), (PLACED, CONFIRMED, APPROVED),
])
def test_an_order_can_be_cancelled_before_any_dispatch(history: tuple[DomainEvent, ...]) -> None:
    assert decide_cancel(given(*history), "changed mind") == [CANCELLED]
    assert given(*history, CANCELLED).status == "cancelled"


@pytest.mark.parametrize("history", [
    (PLACED, CONFIRMED, APPROVED, PARTIAL),
    (PLACED, CONFIRMED, APPROVED, OrderShipped(order_id="o1")),
    (PLACED, CONFIRMED, OrderRejected(order_id="o1", reason="x")),
    (PLACED, CANCELLED),
])
def test_an_order_cannot_be_cancelled_after_a_dispatch_or_once_closed(
        history: tuple[DomainEvent, ...]) -> None:
    with pytest.raises(OrderNotCancellable):
        decide_cancel(given(*history), "too late")


def test_cancelling_an_order_that_does_not_exist_is_not_found() -> None:
    with pytest.raises(OrderNotFound):
        decide_cancel(Order(), "nothing")


TERMINATED = OrderCancelled(order_id="o1", partner_id="p1", reason="partner terminated: fraud")


@pytest.mark.parametrize("history", [
    (PLACED,), (PLACED, CONFIRMED), (PLACED, OrderBackordered(order_id="o1")),
    (PLACED, CONFIRMED, OrderCreditHeld(order_id="o1", reason="partner_suspended")),
    (PLACED, CONFIRMED, OrderAwaitingFunds(order_id="o1")), (PLACED, CONFIRMED, APPROVED),
    (PLACED, CONFIRMED, APPROVED, PARTIAL),
])
def test_a_terminated_partners_order_not_shipped_completely_is_cancelled(
        history: tuple[DomainEvent, ...]) -> None:
    order = given(*history)
    assert rules.decide_close_for_terminated_partner(order, "partner terminated: fraud") == [TERMINATED]
    closed = evolve(order, TERMINATED)
    assert (closed.status, closed.closing_reason) == ("cancelled", "partner terminated: fraud")
    assert closed.lines == order.lines  # a partial dispatch stays shipped


@pytest.mark.parametrize("history", [
    (PLACED, CONFIRMED, APPROVED, OrderShipped(order_id="o1")),
    (PLACED, CONFIRMED, APPROVED, OrderShipped(order_id="o1"), OrderDelivered(order_id="o1")),
    (PLACED, CONFIRMED, OrderRejected(order_id="o1", reason="x")),
    (PLACED, CANCELLED), (PLACED, TERMINATED), (),
])
def test_a_terminated_partners_shipped_or_closed_order_stays_as_it_is(
        history: tuple[DomainEvent, ...]) -> None:
    assert rules.decide_close_for_terminated_partner(given(*history), "partner terminated") == []
