"""Delivery's rules, given events / when command / then events (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import TypeVar

import pytest

from libs.events.base import DomainEvent
from libs.events.delivery import (
    ReturnGoodsDispatched,
    ReturnInspected,
    ReturnReceived,
    ReturnRequested,
    ShipmentCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    StockAllocated,
    StockBackordered,
    StockReceived,
    StockReleased,
)
from libs.events.values import SkuQty
from services.delivery.domain.allocation import (
    Allocation,
    QueuedOrder,
    decide_from_backorder,
    decide_on_placement,
    decide_release,
    evolve_allocation,
    serve_in_arrival_order,
)
from services.delivery.domain.errors import (
    AlreadyDelivered,
    DeliveredBeforeDispatch,
    DuplicateReference,
    ExceedsReceived,
    ExceedsRemaining,
    ExceedsRequested,
    ExceedsReturnable,
    InspectionIncomplete,
    InsufficientStock,
    NotFullyDispatched,
    OutcomeNotForKind,
    ReturnAlreadyInspected,
    ReturnAlreadyReceived,
    ReturnNotReceived,
    ShipmentCancelled,
)
from services.delivery.domain.returns import (
    GoodsReturn,
    Outcome,
    decide_goods_dispatched,
    decide_inspection,
    decide_receipt_of_return,
    decide_request,
    evolve_return,
    goods_sent_back,
)
from services.delivery.domain.shipment import (
    Shipment,
    decide_delivery,
    decide_dispatch,
    evolve_shipment,
)
from services.delivery.domain.stock import (
    StockItem,
    StockLevel,
    decide_receipt,
    evolve_stock_item,
    movements_of,
)

S = TypeVar("S")
DAY = date(2026, 3, 10)


def given(initial: S, evolve: Callable[[S, DomainEvent], S], events: Sequence[DomainEvent]) -> S:
    state = initial
    for event in events:
        state = evolve(state, event)
    return state


def lines(**quantities: int) -> list[SkuQty]:
    return [SkuQty(sku=sku, qty=qty) for sku, qty in quantities.items()]


# -- stock ------------------------------------------------------------------------------------


def test_a_receipt_books_stock_once_per_reference() -> None:
    state = given(StockItem(), evolve_stock_item, [StockReceived(sku="A", qty=5, reference="DN-1")])
    assert decide_receipt(state, "A", 3, "DN-2") == [StockReceived(sku="A", qty=3, reference="DN-2")]
    with pytest.raises(DuplicateReference):
        decide_receipt(state, "A", 3, "DN-1")


def test_stock_level_moves() -> None:
    level = StockLevel("A").received(10).reserved(4)
    assert (level.on_hand, level.allocated, level.available) == (10, 4, 6)
    level = level.shipped(3).released(1)
    assert (level.on_hand, level.allocated, level.available) == (7, 0, 7)


# -- allocation -------------------------------------------------------------------------------


def test_placement_allocates_every_line_when_all_are_available() -> None:
    events = decide_on_placement(Allocation(), "o1", {"A": 2, "B": 3}, {"A": 2, "B": 10})
    assert events == [StockAllocated(order_id="o1", lines=lines(A=2, B=3))]


def test_placement_is_all_or_nothing_and_lists_what_is_missing() -> None:
    events = decide_on_placement(Allocation(), "o1", {"A": 2, "B": 3, "C": 1}, {"A": 5, "B": 1})
    assert events == [StockBackordered(order_id="o1", lines=lines(B=2, C=1))]


def test_placement_seen_again_changes_nothing() -> None:
    state = given(Allocation(), evolve_allocation, [StockBackordered(order_id="o1", lines=lines(A=1))])
    assert decide_on_placement(state, "o1", {"A": 1}, {"A": 5}) == []


def test_a_backorder_is_allocated_only_when_completely_covered() -> None:
    state = given(Allocation(), evolve_allocation, [StockBackordered(order_id="o1", lines=lines(A=1))])
    assert decide_from_backorder(state, {"A": 3, "B": 1}, {"A": 3}) == []
    assert decide_from_backorder(state, {"A": 3, "B": 1}, {"A": 3, "B": 1}) == [
        StockAllocated(order_id="o1", lines=lines(A=3, B=1))]


def test_backorders_are_served_in_arrival_order_each_taking_its_stock() -> None:
    queue = [
        QueuedOrder("late", "2026-03-10T10:00:00.000000Z", (("A", 4),)),
        QueuedOrder("early", "2026-03-10T09:00:00.000000Z", (("A", 4),)),
        QueuedOrder("middle", "2026-03-10T09:30:00.000000Z", (("A", 5), ("B", 1))),
    ]
    served = serve_in_arrival_order(queue, {"A": 9})
    # early takes 4; middle cannot be covered (no B) and does not block late, which takes 4.
    assert [q.order_id for q in served] == ["early", "late"]
    assert [q.order_id for q in serve_in_arrival_order(queue, {"A": 6})] == ["early"]
    assert [q.order_id for q in serve_in_arrival_order(queue, {"A": 9, "B": 1})] == [
        "early", "middle"]


def test_release_gives_back_what_was_allocated_and_not_shipped() -> None:
    state = given(Allocation(), evolve_allocation, [StockAllocated(order_id="o1", lines=lines(A=5, B=2))])
    assert decide_release(state, "o1", {"A": 2}) == [
        StockReleased(order_id="o1", lines=lines(A=3, B=2))]


def test_release_of_a_backorder_only_leaves_the_queue_and_is_final() -> None:
    state = given(Allocation(), evolve_allocation, [StockBackordered(order_id="o1", lines=lines(A=1))])
    released = decide_release(state, "o1", {})
    assert released == [StockReleased(order_id="o1", lines=[])]
    state = given(state, evolve_allocation, released)
    assert decide_release(state, "o1", {}) == []
    assert decide_from_backorder(state, {"A": 1}, {"A": 9}) == []
    assert decide_release(Allocation(), "unknown", {}) == []


# -- shipment ---------------------------------------------------------------------------------

CREATED = ShipmentCreated(shipment_id="shp_1", order_id="o1", partner_id="p1", lines=lines(A=5, B=2))


def dispatched(events: Sequence[DomainEvent]) -> Shipment:
    return given(Shipment(), evolve_shipment, [CREATED, *events])


def dispatch(state: Shipment, qty: dict[str, int], cancelled: bool = False) -> list[DomainEvent]:
    return decide_dispatch(state, lines=qty, carrier="SF", tracking_no="T1", dispatch_id="dsp_1",
                           today=DAY, cancelled=cancelled)


def test_a_shipment_is_dispatched_in_two_parts() -> None:
    state = dispatched([])
    first = dispatch(state, {"A": 3})
    assert first == [ShipmentDispatched(
        shipment_id="shp_1", order_id="o1", partner_id="p1", dispatch_id="dsp_1",
        lines=lines(A=3), carrier="SF", tracking_no="T1", dispatched_on=DAY,
        remaining=lines(A=2, B=2), complete=False)]
    state = given(state, evolve_shipment, first)
    assert state.status() == "partially_dispatched"
    second = dispatch(state, {"A": 2, "B": 2})
    assert second[0].remaining == [] and second[0].complete  # type: ignore[attr-defined]
    assert given(state, evolve_shipment, second).status() == "dispatched"


@pytest.mark.parametrize("qty", [{"A": 6}, {"C": 1}, {"A": 1, "B": 3}])
def test_dispatching_more_than_remains_is_refused(qty: dict[str, int]) -> None:
    with pytest.raises(ExceedsRemaining):
        dispatch(dispatched([]), qty)


def test_nothing_ships_for_a_cancelled_order() -> None:
    with pytest.raises(ShipmentCancelled):
        dispatch(dispatched([]), {"A": 1}, cancelled=True)


def test_delivery_only_after_the_complete_dispatch_and_only_once() -> None:
    at = datetime(2026, 3, 11, 8, tzinfo=UTC)
    with pytest.raises(NotFullyDispatched):
        decide_delivery(dispatched([]), at, "Li Lei")
    state = dispatched(dispatch(dispatched([]), {"A": 5, "B": 2}))
    assert decide_delivery(state, at, "Li Lei") == [ShipmentDelivered(
        shipment_id="shp_1", order_id="o1", partner_id="p1", delivered_at=at, signed_by="Li Lei")]
    with pytest.raises(DeliveredBeforeDispatch):
        decide_delivery(state, datetime(2026, 3, 9, tzinfo=UTC), "Li Lei")
    delivered = given(state, evolve_shipment, decide_delivery(state, at, "Li Lei"))
    assert delivered.status() == "delivered"
    with pytest.raises(AlreadyDelivered):
        decide_delivery(delivered, at, "Li Lei")
    with pytest.raises(AlreadyDelivered):
        dispatch(delivered, {"A": 1})


# -- returns ----------------------------------------------------------------------------------


def request(qty: dict[str, int], claimed: dict[str, int]) -> list[DomainEvent]:
    return decide_request(return_id="ret_1", order_id="o1", partner_id="p1", lines=qty,
                          reason="broken", kind="refund", dispatched={"A": 5, "B": 2},
                          claimed=claimed)


def test_a_return_names_at_most_what_was_dispatched_and_not_returned() -> None:
    assert request({"A": 2}, {"A": 3}) == [ReturnRequested(
        return_id="ret_1", order_id="o1", partner_id="p1", lines=lines(A=2), reason="broken",
        kind="refund")]
    with pytest.raises(ExceedsReturnable):
        request({"A": 3}, {"A": 3})
    with pytest.raises(ExceedsReturnable):
        request({"C": 1}, {})


def test_a_received_return_claims_what_arrived_not_what_was_asked() -> None:
    state = given(GoodsReturn(), evolve_return, request({"A": 4}, {}))
    assert state.claimed == {"A": 4}
    with pytest.raises(ExceedsRequested):
        decide_receipt_of_return(state, {"A": 5}, DAY)
    received = decide_receipt_of_return(state, {"A": 1}, DAY)
    assert received == [ReturnReceived(return_id="ret_1", order_id="o1", partner_id="p1",
                                       kind="refund", lines=lines(A=1), received_on=DAY)]
    state = given(state, evolve_return, received)
    assert state.claimed == {"A": 1}
    with pytest.raises(ReturnAlreadyReceived):
        decide_receipt_of_return(state, {"A": 1}, DAY)


def received_return(kind: str, **received: int) -> GoodsReturn:
    asked = decide_request(return_id="ret_1", order_id="o1", partner_id="p1", lines=received,
                           reason="broken", kind=kind, dispatched={"A": 5, "B": 2},  # type: ignore[arg-type]
                           claimed={})
    state = given(GoodsReturn(), evolve_return, asked)
    return given(state, evolve_return, decide_receipt_of_return(state, received, DAY))


def test_inspection_accounts_for_every_received_unit_once() -> None:
    state = received_return("refund", A=3, B=1)
    with pytest.raises(ExceedsReceived):
        decide_inspection(state, {"A": Outcome(restock=3, scrap=1), "B": Outcome(scrap=1)}, DAY, None)
    with pytest.raises(ExceedsReceived):
        decide_inspection(state, {"A": Outcome(restock=3), "B": Outcome(scrap=1), "C": Outcome(scrap=1)},
                          DAY, None)
    with pytest.raises(InspectionIncomplete):
        decide_inspection(state, {"A": Outcome(restock=3)}, DAY, None)
    with pytest.raises(OutcomeNotForKind):
        decide_inspection(state, {"A": Outcome(repaired=3), "B": Outcome(scrap=1)}, DAY, None)
    inspected = decide_inspection(state, {"A": Outcome(restock=2, scrap=1), "B": Outcome(scrap=1)},
                                  DAY, "shp_ignored")
    assert inspected == [ReturnInspected(
        return_id="ret_1", order_id="o1", partner_id="p1", kind="refund", restocked=lines(A=2),
        scrapped=lines(A=1, B=1), repaired=[], inspected_on=DAY, shipment_id=None)]
    done = given(state, evolve_return, inspected)
    assert (done.status, done.claimed) == ("inspected", {"A": 3, "B": 1})
    with pytest.raises(ReturnAlreadyInspected):
        decide_inspection(done, {"A": Outcome(restock=3), "B": Outcome(scrap=1)}, DAY, None)
    with pytest.raises(ReturnAlreadyReceived):
        decide_receipt_of_return(done, {"A": 1}, DAY)
    asked = given(GoodsReturn(), evolve_return, request({"A": 1}, {}))
    with pytest.raises(ReturnNotReceived):
        decide_inspection(asked, {"A": Outcome(restock=1)}, DAY, None)


def test_a_repair_is_repaired_and_its_goods_go_back_on_its_shipment() -> None:
    state = received_return("repair", A=2)
    for wrong in (Outcome(restock=2), Outcome(scrap=2), Outcome(repaired=1, scrap=1)):
        with pytest.raises(OutcomeNotForKind):
            decide_inspection(state, {"A": wrong}, DAY, "shp_r")
    inspected = given(state, evolve_return,
                      decide_inspection(state, {"A": Outcome(repaired=2)}, DAY, "shp_r"))
    assert (inspected.status, inspected.shipment_id, goods_sent_back(inspected)) == (
        "inspected", "shp_r", {"A": 2})
    back = given(Shipment(), evolve_shipment, [ShipmentCreated(
        shipment_id="shp_r", order_id="o1", partner_id="p1", lines=lines(A=2), purpose="repair",
        return_id="ret_1")])
    first = dispatch(back, {"A": 1})
    [part] = decide_goods_dispatched(inspected, first[0])  # type: ignore[arg-type]
    assert isinstance(part, ReturnGoodsDispatched) and not part.complete
    assert given(inspected, evolve_return, [part]).status == "inspected"
    rest = dispatch(given(back, evolve_shipment, first), {"A": 1})
    [last] = decide_goods_dispatched(inspected, rest[0])  # type: ignore[arg-type]
    assert given(inspected, evolve_return, [last]).status == "repaired_shipped"
    assert [type(e) for e in rest] == [ShipmentDispatched] and rest[0].purpose == "repair"  # type: ignore[attr-defined]


def test_a_refund_ships_nothing_back_and_a_replacement_needs_available_stock() -> None:
    refund = given(received_return("refund", A=1), evolve_return,
                   decide_inspection(received_return("refund", A=1), {"A": Outcome(scrap=1)}, DAY, None))
    assert goods_sent_back(refund) == {}
    sale = dispatch(dispatched([]), {"A": 1})[0]
    assert decide_goods_dispatched(refund, sale) == []  # type: ignore[arg-type]
    replacement = given(Shipment(), evolve_shipment, [ShipmentCreated(
        shipment_id="shp_x", order_id="o1", partner_id="p1", lines=lines(A=2), purpose="replacement",
        return_id="ret_1")])
    with pytest.raises(InsufficientStock):
        decide_dispatch(replacement, lines={"A": 2}, carrier="SF", tracking_no="T", dispatch_id="d",
                        today=DAY, cancelled=False, available={"A": 1})
    [sent] = decide_dispatch(replacement, lines={"A": 2}, carrier="SF", tracking_no="T", dispatch_id="d",
                             today=DAY, cancelled=False, available={"A": 2})
    assert (sent.purpose, sent.return_id) == ("replacement", "ret_1")  # type: ignore[attr-defined]


def test_each_location_moves_by_its_own_facts() -> None:
    def fold(*events: DomainEvent) -> StockLevel:
        level = StockLevel("A", on_hand=10, allocated=4)
        for event in events:
            for quantities, move in movements_of(event):
                level = move(level, quantities.get("A", 0))
        return level

    received = ReturnReceived(return_id="r", order_id="o1", partner_id="p1", kind="refund",
                              lines=lines(A=3), received_on=DAY)
    assert fold(received) == StockLevel("A", on_hand=10, allocated=4, in_inspection=3)
    inspected = ReturnInspected(return_id="r", order_id="o1", partner_id="p1", kind="refund",
                                restocked=lines(A=2), scrapped=lines(A=1), repaired=[], inspected_on=DAY)
    assert fold(received, inspected) == StockLevel("A", on_hand=12, allocated=4, in_inspection=0)

    def sent(purpose: str) -> ShipmentDispatched:
        return ShipmentDispatched(
            shipment_id="s", order_id="o1", partner_id="p1", dispatch_id="d", lines=lines(A=1),
            carrier="SF", tracking_no="T", dispatched_on=DAY, remaining=[], complete=True,
            purpose=purpose)  # type: ignore[arg-type]

    assert fold(sent("sale")) == StockLevel("A", on_hand=9, allocated=3)
    assert fold(sent("replacement")) == StockLevel("A", on_hand=9, allocated=4)
    assert fold(received, sent("repair")) == StockLevel("A", on_hand=10, allocated=4, in_inspection=2)
