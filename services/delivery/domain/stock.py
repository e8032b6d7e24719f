"""Stock of one sku: goods receipts (the ``stock-<sku>`` stream) and the sku's level in the ledger.

A receipt books goods that arrived; its ``reference`` (the delivery note) is
unique per sku, so booking the same note twice is refused (409), never counted
twice. A receipt is how a sku becomes known to delivery: products are known
here only as skus.

The level of a sku moves with facts of several streams, all under one stock
lock (see ``application.ledger``):

- ``on_hand``: sellable goods in the warehouse. + receipts, + returned units
  restocked by inspection, - dispatched goods (allocated stock leaves on hand
  when it ships; an exchange's replacement leaves from available stock).
- ``allocated``: on hand but reserved for confirmed orders. + allocations,
  - releases (cancelled or rejected orders), - dispatched goods of sales.
- ``available = on_hand - allocated``: what a new order can be given.
- ``in_inspection``: returned goods at the inspection location, never
  sellable. + received returns, - units inspection restocked (they move to
  on hand) or scrapped (they leave the books), - repaired units shipped back
  to their partner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from libs.events.base import DomainEvent
from libs.events.delivery import (
    ReturnInspected,
    ReturnReceived,
    ShipmentDispatched,
    StockAllocated,
    StockReceived,
    StockReleased,
)
from libs.runtime.persistent import PMap
from services.delivery.domain.errors import DuplicateReference
from services.delivery.domain.quantities import Tally, tally

STOCK_ITEM_SHAPE = "delivery.stock-item/1"
"""The shape of ``StockItem`` in snapshots: bump it with any change to the class or its codec."""


@dataclass(frozen=True)
class StockItem:
    """The receipts booked for one sku (state of the ``stock-<sku>`` stream).

    ``references`` maps each booked delivery note to its quantity; a ``PMap``, so
    booking one more shares the rest with the state before it.
    """

    sku: str = ""
    received: int = 0
    references: PMap[str, int] = field(default_factory=PMap)


def evolve_stock_item(state: StockItem, event: DomainEvent) -> StockItem:
    if isinstance(event, StockReceived):
        return replace(state, sku=event.sku, received=state.received + event.qty,
                       references=state.references.set(event.reference,
                                                       state.references.get(event.reference, 0) + event.qty))
    return state


def encode_stock_item(state: StockItem) -> dict[str, object]:
    """The stock item as JSON for snapshots (references sorted, so the same bytes every time)."""
    return {"sku": state.sku, "received": state.received,
            "references": [[ref, state.references[ref]] for ref in sorted(state.references)]}


def decode_stock_item(body: dict[str, Any]) -> StockItem:
    return StockItem(sku=body["sku"], received=body["received"],
                     references=PMap((ref, qty) for ref, qty in body["references"]))


def decide_receipt(state: StockItem, sku: str, qty: int, reference: str) -> list[DomainEvent]:
    """Book ``qty`` of ``sku`` under ``reference``, unless that reference was booked already."""
    if reference in state.references:
        raise DuplicateReference(f"receipt {reference!r} was already booked for sku {sku!r}",
                                 sku=sku, reference=reference)
    return [StockReceived(sku=sku, qty=qty, reference=reference)]


@dataclass(frozen=True)
class StockLevel:
    """A sku's quantities in the stock ledger."""

    sku: str
    on_hand: int = 0
    allocated: int = 0
    in_inspection: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.allocated

    def received(self, qty: int) -> StockLevel:
        return replace(self, on_hand=self.on_hand + qty)

    def reserved(self, qty: int) -> StockLevel:
        return replace(self, allocated=self.allocated + qty)

    def released(self, qty: int) -> StockLevel:
        return replace(self, allocated=self.allocated - qty)

    def shipped(self, qty: int) -> StockLevel:
        return replace(self, on_hand=self.on_hand - qty, allocated=self.allocated - qty)

    def sent_as_replacement(self, qty: int) -> StockLevel:
        return replace(self, on_hand=self.on_hand - qty)

    def held_for_inspection(self, qty: int) -> StockLevel:
        return replace(self, in_inspection=self.in_inspection + qty)

    def restocked(self, qty: int) -> StockLevel:
        return replace(self, in_inspection=self.in_inspection - qty, on_hand=self.on_hand + qty)

    def scrapped(self, qty: int) -> StockLevel:
        return replace(self, in_inspection=self.in_inspection - qty)

    def as_dict(self) -> dict[str, object]:
        return {"sku": self.sku, "on_hand": self.on_hand, "allocated": self.allocated,
                "available": self.available, "in_inspection": self.in_inspection}


def available_of(levels: Mapping[str, StockLevel]) -> dict[str, int]:
    return {sku: level.available for sku, level in levels.items()}


Movement = Callable[[StockLevel, int], StockLevel]

SHIPPED_BY_PURPOSE: dict[str, Movement] = {
    "sale": StockLevel.shipped,
    "replacement": StockLevel.sent_as_replacement,
    "repair": StockLevel.scrapped,  # the partner's repaired unit leaves the inspection location
}


def movements_of(event: DomainEvent) -> list[tuple[Tally, Movement]]:
    """How a fact moves the ledger: quantities per sku and the movement, for each move it makes.

    The ledger is the fold of these movements over delivery's events in commit order.
    """
    if isinstance(event, StockReceived):
        return [({event.sku: event.qty}, StockLevel.received)]
    if isinstance(event, StockAllocated):
        return [(tally(event.lines), StockLevel.reserved)]
    if isinstance(event, StockReleased):
        return [(tally(event.lines), StockLevel.released)]
    if isinstance(event, ShipmentDispatched):
        return [(tally(event.lines), SHIPPED_BY_PURPOSE[event.purpose])]
    if isinstance(event, ReturnReceived):
        return [(tally(event.lines), StockLevel.held_for_inspection)]
    if isinstance(event, ReturnInspected):
        return [(tally(event.restocked), StockLevel.restocked),
                (tally(event.scrapped), StockLevel.scrapped)]
    return []
