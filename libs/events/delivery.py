"""Events published by the delivery service: stock, shipments and returns.

Delivery keeps the lines of each order from ``OrderPlaced``; its own events
name quantities only, never prices.
"""

from __future__ import annotations

from datetime import date

from pydantic import AwareDatetime

from libs.events.base import DomainEvent
from libs.events.values import ReturnKind, ShipmentPurpose, SkuQty


class StockReceived(DomainEvent):
    """Goods arrived at the warehouse; backordered orders are served in arrival order."""

    TYPE = "StockReceived"

    sku: str
    qty: int
    reference: str


class StockAllocated(DomainEvent):
    """Stock was reserved for every line of an order."""

    TYPE = "StockAllocated"

    order_id: str
    lines: list[SkuQty]


class StockBackordered(DomainEvent):
    """Stock is short for an order; ``lines`` are the quantities missing."""

    TYPE = "StockBackordered"

    order_id: str
    lines: list[SkuQty]


class StockReleased(DomainEvent):
    """Stock reserved for a cancelled or rejected order went back on hand."""

    TYPE = "StockReleased"

    order_id: str
    lines: list[SkuQty]


class ShipmentCreated(DomainEvent):
    """A shipment to dispatch, with the lines still to ship.

    ``purpose`` says why it ships: ``sale`` (an approved order's goods, invoiced
    on dispatch), ``replacement`` (an exchange return's new goods, never
    invoiced) or ``repair`` (the partner's repaired goods going back, never
    invoiced). A non-sale shipment names the return it serves (``return_id``).
    """

    TYPE = "ShipmentCreated"

    shipment_id: str
    order_id: str
    partner_id: str
    lines: list[SkuQty]
    purpose: ShipmentPurpose = "sale"
    return_id: str | None = None


class ShipmentDispatched(DomainEvent):
    """Goods left the warehouse (all or part).

    A ``sale`` dispatch is invoiced on ``dispatched_on`` and ships the order; a
    ``replacement`` or ``repair`` dispatch (of a return) moves no money and does
    not ship the order.
    """

    TYPE = "ShipmentDispatched"

    shipment_id: str
    order_id: str
    partner_id: str
    dispatch_id: str
    lines: list[SkuQty]
    carrier: str
    tracking_no: str
    dispatched_on: date
    remaining: list[SkuQty]
    complete: bool
    purpose: ShipmentPurpose = "sale"
    return_id: str | None = None


class ShipmentDelivered(DomainEvent):
    """The partner signed for the shipment (proof of delivery)."""

    TYPE = "ShipmentDelivered"

    shipment_id: str
    order_id: str
    partner_id: str
    delivered_at: AwareDatetime
    signed_by: str
    purpose: ShipmentPurpose = "sale"
    return_id: str | None = None


class ReturnRequested(DomainEvent):
    """A partner asked to return goods of a shipped order, for refund, exchange or repair."""

    TYPE = "ReturnRequested"

    return_id: str
    order_id: str
    partner_id: str
    lines: list[SkuQty]
    reason: str
    kind: ReturnKind


class ReturnReceived(DomainEvent):
    """Returned goods arrived at the inspection location (not sellable stock yet).

    A refund return yields a credit note and reverses rebate; an exchange or a
    repair moves no money.
    """

    TYPE = "ReturnReceived"

    return_id: str
    order_id: str
    partner_id: str
    kind: ReturnKind
    lines: list[SkuQty]
    received_on: date


class ReturnInspected(DomainEvent):
    """The warehouse inspected every received unit of a return, sku by sku.

    ``restocked`` units become sellable stock, ``scrapped`` units leave the
    books, ``repaired`` units (repair returns only) wait at the inspection
    location for their shipment back. An exchange or repair return gets a
    shipment (``shipment_id``): the replacement of every inspected unit, or the
    repaired units.
    """

    TYPE = "ReturnInspected"

    return_id: str
    order_id: str
    partner_id: str
    kind: ReturnKind
    restocked: list[SkuQty]
    scrapped: list[SkuQty]
    repaired: list[SkuQty]
    inspected_on: date
    shipment_id: str | None = None


class ReturnGoodsDispatched(DomainEvent):
    """The replacement (exchange) or the repaired goods (repair) of a return left for the partner
    on ``shipment_id`` (all of them once ``complete``)."""

    TYPE = "ReturnGoodsDispatched"

    return_id: str
    order_id: str
    partner_id: str
    kind: ReturnKind
    shipment_id: str
    dispatch_id: str
    lines: list[SkuQty]
    carrier: str
    tracking_no: str
    dispatched_on: date
    complete: bool


EVENTS: tuple[type[DomainEvent], ...] = (
    StockReceived,
    StockAllocated,
    StockBackordered,
    StockReleased,
    ShipmentCreated,
    ShipmentDispatched,
    ShipmentDelivered,
    ReturnRequested,
    ReturnReceived,
    ReturnInspected,
    ReturnGoodsDispatched,
)
