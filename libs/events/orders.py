"""Events published by the orders service: catalog, price lists, orders and their status.

An order's status events carry only ``order_id`` (its stream); consumers keep
what they need from ``OrderPlaced``, which is the one event with the priced lines.
"""

from __future__ import annotations

from datetime import date

from pydantic import Field

from libs.events.base import DomainEvent
from libs.events.values import DEFAULT_CURRENCY, HoldReason, OrderLine, SkuPrice, SkuQty, TermsKind


class ProductCreated(DomainEvent):
    """A product entered the catalog; no order line may be priced below its minimum price."""

    TYPE = "ProductCreated"

    sku: str
    name: str
    category: str
    list_price_minor: int
    min_price_minor: int | None = None
    currency: str = DEFAULT_CURRENCY


class PriceListPublished(DomainEvent):
    """A new version of a tier's prices: a discount off list price plus fixed per-sku prices."""

    TYPE = "PriceListPublished"

    tier: str
    version: int
    effective_from: date
    discount_bp: int
    overrides: list[SkuPrice]
    currency: str = DEFAULT_CURRENCY
    override_reason: str | None = None
    """Why sales let this version take effect with less than the notice period (else None)."""


class PriceChangeNotified(DomainEvent):
    """A partner of the tier was notified of a price-list version that takes effect later."""

    TYPE = "PriceChangeNotified"

    notice_id: str
    partner_id: str
    tier: str
    version: int
    effective_from: date


class PriceChangeAcknowledged(DomainEvent):
    """The partner acknowledged a price-change notice."""

    TYPE = "PriceChangeAcknowledged"

    notice_id: str
    partner_id: str
    tier: str
    version: int


class OrderPlaced(DomainEvent):
    """A partner placed an order inside its territories; its prices are fixed from now on."""

    TYPE = "OrderPlaced"

    order_id: str
    partner_id: str
    partner_ref: str
    lines: list[OrderLine]
    ship_to_region: str
    ship_to_address: str | None = None
    total_minor: int
    currency: str = DEFAULT_CURRENCY
    payment_kind: TermsKind
    price_list_version: int | None = None
    """The tier's price-list version in effect on the order date (None: list prices)."""
    deal_id: str | None = None
    """The approved deal registration that priced the order, if it cited one."""


class TerritoryViolationRecorded(DomainEvent):
    """A partner tried to order into a region outside its territories (cross-territory selling)."""

    TYPE = "TerritoryViolationRecorded"

    partner_id: str
    partner_ref: str
    region: str
    territories: list[str]


class DealRegistered(DomainEvent):
    """A partner registered an end-customer deal (报备); sales approves or rejects it.

    ``customer_key`` is the end customer's normalised name (case and whitespace
    folded), the key deals of one customer are matched by.
    """

    TYPE = "DealRegistered"

    deal_id: str
    partner_id: str
    end_customer: str
    customer_key: str
    customer_code: str | None = None
    lines: list[SkuQty]
    expires_on: date


class DealApproved(DomainEvent):
    """Sales approved a deal with its deal prices; it prices the orders citing it until it expires."""

    TYPE = "DealApproved"

    deal_id: str
    partner_id: str
    prices: list[SkuPrice]
    currency: str = DEFAULT_CURRENCY


class DealRejected(DomainEvent):
    """Sales rejected a deal registration."""

    TYPE = "DealRejected"

    deal_id: str
    partner_id: str
    reason: str


class DealConflictRecorded(DomainEvent):
    """A deal registration was refused as a channel conflict.

    Another partner holds a pending or approved, unexpired deal for the same end customer
    and some of the same products (``conflicting_deal_id``, ``skus``).
    """

    TYPE = "DealConflictRecorded"

    deal_id: str
    partner_id: str
    end_customer: str
    customer_key: str
    customer_code: str | None = None
    lines: list[SkuQty]
    expires_on: date
    conflicting_deal_id: str
    conflicting_partner_id: str
    skus: list[str]
    """The products both registrations name."""


class OrderConfirmed(DomainEvent):
    """The order's stock was allocated; it now goes to funds review."""

    TYPE = "OrderConfirmed"

    order_id: str


class OrderBackordered(DomainEvent):
    """Stock is short; the order is confirmed, in arrival order, when stock comes in."""

    TYPE = "OrderBackordered"

    order_id: str


class OrderAwaitingFunds(DomainEvent):
    """A prepaid partner's order waits for the money to arrive."""

    TYPE = "OrderAwaitingFunds"

    order_id: str


class OrderCreditHeld(DomainEvent):
    """The order is on credit hold: it would exceed the limit, or the partner is overdue."""

    TYPE = "OrderCreditHeld"

    order_id: str
    reason: HoldReason


class OrderApproved(DomainEvent):
    """Funds review passed; the order may ship."""

    TYPE = "OrderApproved"

    order_id: str


class OrderPartiallyShipped(DomainEvent):
    """Part of the order was dispatched (``dispatch_id``/``lines``: that dispatch); the rest is to ship."""

    TYPE = "OrderPartiallyShipped"

    order_id: str
    dispatch_id: str | None = None
    lines: list[SkuQty] = Field(default_factory=list)


class OrderShipped(DomainEvent):
    """Every line of the order was dispatched (``dispatch_id``/``lines``: the last dispatch)."""

    TYPE = "OrderShipped"

    order_id: str
    dispatch_id: str | None = None
    lines: list[SkuQty] = Field(default_factory=list)


class OrderDelivered(DomainEvent):
    """Delivery of the order was confirmed."""

    TYPE = "OrderDelivered"

    order_id: str


class OrderRejected(DomainEvent):
    """The order was rejected (finance refused a held order); its stock goes back."""

    TYPE = "OrderRejected"

    order_id: str
    reason: str


class OrderCancelled(DomainEvent):
    """The order was cancelled before any shipment; its stock and exposure are released."""

    TYPE = "OrderCancelled"

    order_id: str
    partner_id: str
    reason: str


EVENTS: tuple[type[DomainEvent], ...] = (
    ProductCreated,
    PriceListPublished,
    PriceChangeNotified,
    PriceChangeAcknowledged,
    OrderPlaced,
    TerritoryViolationRecorded,
    DealRegistered,
    DealApproved,
    DealRejected,
    DealConflictRecorded,
    OrderConfirmed,
    OrderBackordered,
    OrderAwaitingFunds,
    OrderCreditHeld,
    OrderApproved,
    OrderPartiallyShipped,
    OrderShipped,
    OrderDelivered,
    OrderRejected,
    OrderCancelled,
)
