"""Allocation of stock to one order (stream ``allocation-<order_id>``): all lines or none.

Rules
- On placement an order gets stock for **every** line, or for none: if any line
  is short the order is backordered (``StockBackordered`` lists what is
  missing) and joins the backorder queue.
- Backordered orders are served in **arrival order** (placement time) whenever
  stock makes room (a receipt, a release, a returned unit restocked by
  inspection): the queue is walked oldest first and each order that can now
  be covered **completely** is allocated, taking its stock before any later
  order looks. An older order that still cannot be covered does not block a
  later one that can (no partial allocation ever happens, so holding stock
  back for it would only idle it).
- A new order is allocated at once if stock covers it: every queued order was
  already found uncoverable with the stock on hand, so it takes nothing they
  could have had completely.
- A cancelled or rejected order releases what it holds and not yet shipped
  (``StockReleased``); a backordered one just leaves the queue
  (``StockReleased`` with no lines). A released allocation is final.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from libs.events.base import DomainEvent
from libs.events.delivery import StockAllocated, StockBackordered, StockReleased
from services.delivery.domain.quantities import Tally, as_lines, frozen, minus, tally

NEW, BACKORDERED, ALLOCATED, RELEASED = "new", "backordered", "allocated", "released"


@dataclass(frozen=True)
class Allocation:
    order_id: str = ""
    status: str = NEW
    allocated: tuple[tuple[str, int], ...] = ()
    missing: tuple[tuple[str, int], ...] = ()
    released: tuple[tuple[str, int], ...] = ()

    @property
    def holds(self) -> Tally:
        """Stock reserved for the order (before dispatches are taken off)."""
        return dict(self.allocated)


def evolve_allocation(state: Allocation, event: DomainEvent) -> Allocation:
    if isinstance(event, StockAllocated):
        return replace(state, order_id=event.order_id, status=ALLOCATED,
                       allocated=frozen(tally(event.lines)), missing=())
    if isinstance(event, StockBackordered):
        return replace(state, order_id=event.order_id, status=BACKORDERED,
                       missing=frozen(tally(event.lines)))
    if isinstance(event, StockReleased):
        return replace(state, order_id=event.order_id, status=RELEASED,
                       released=frozen(tally(event.lines)))
    return state


def shortfall(needed: Mapping[str, int], available: Mapping[str, int]) -> Tally:
    """What is missing per sku to cover ``needed`` (empty when it is covered)."""
    return {sku: qty - max(0, available.get(sku, 0)) for sku, qty in needed.items()
            if qty > max(0, available.get(sku, 0))}


def decide_on_placement(
    state: Allocation, order_id: str, needed: Mapping[str, int], available: Mapping[str, int]
) -> list[DomainEvent]:
    """Allocate every line of a newly placed order, or backorder it listing what is missing."""
    if state.status != NEW:
        return []  # the placement was handled already
    missing = shortfall(needed, available)
    if missing:
        return [StockBackordered(order_id=order_id, lines=as_lines(missing))]
    return [StockAllocated(order_id=order_id, lines=as_lines(needed))]


def decide_from_backorder(
    state: Allocation, needed: Mapping[str, int], available: Mapping[str, int]
) -> list[DomainEvent]:
    """Allocate a queued order once stock covers all of it; otherwise it keeps waiting."""
    if state.status != BACKORDERED or shortfall(needed, available):
        return []
    return [StockAllocated(order_id=state.order_id, lines=as_lines(needed))]


def decide_release(
    state: Allocation, order_id: str, dispatched: Mapping[str, int]
) -> list[DomainEvent]:
    """Give back what the order holds and has not shipped; a backorder just leaves the queue."""
    if state.status == ALLOCATED:
        return [StockReleased(order_id=order_id, lines=as_lines(minus(state.holds, dispatched)))]
    if state.status == BACKORDERED:
        return [StockReleased(order_id=order_id, lines=[])]
    return []


@dataclass(frozen=True)
class QueuedOrder:
    """A backordered order waiting for stock; ``arrival`` sorts the queue (placement time, id)."""

    order_id: str
    arrival: str
    needed: tuple[tuple[str, int], ...]


def serve_in_arrival_order(
    queue: Sequence[QueuedOrder], available: Mapping[str, int]
) -> list[QueuedOrder]:
    """The queued orders stock now covers completely, oldest first, each taking its stock in turn."""
    left = dict(available)
    served: list[QueuedOrder] = []
    for queued in sorted(queue, key=lambda q: (q.arrival, q.order_id)):
        needed = dict(queued.needed)
        if not shortfall(needed, left):
            served.append(queued)
            left = minus(left, needed)
    return served
