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
    """A shipment to dispatch (an order's sale, or a return's replacement or repaired goods)."""

    TYPE = "ShipmentCreated"

    shipment_id: str
    order_id: str
    partner_id: str
    lines: list[SkuQty]
    purpose: ShipmentPurpose = "sale"
    return_id: str | None = None
    """The return a replacement or repair shipment serves (None for a sale)."""


class ShipmentDispatched(DomainEvent):
    """Goods left the warehouse (all or part); only a sale's dispatch is invoiced, on ``dispatched_on``."""

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
    """Returned goods arrived for inspection; a refund return yields a credit note and reverses rebate."""

    TYPE = "ReturnReceived"

    return_id: str
    order_id: str
    partner_id: str
    kind: ReturnKind
    lines: list[SkuQty]
    received_on: date


class ReturnInspected(DomainEvent):
    """Every received unit of a return was restocked, scrapped or repaired; ``shipment_id`` ships back."""

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
    """An exchange's replacement shipment or a repair's shipment back (None for a refund)."""


class ReturnGoodsDispatched(DomainEvent):
    """A return's replacement (exchange) or repaired goods (repair) left for the partner."""

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
