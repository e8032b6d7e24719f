"""The refusals of the orders domain, each with its problem type (mapped to problem+json in libs)."""

from __future__ import annotations

from libs.events.orders import TerritoryViolationRecorded
from libs.runtime.errors import Conflict, DomainError, Forbidden, NotFound


class PartnerNotFound(NotFound):
    """The partner is not known here (or the caller may not act for it)."""

    slug = "partner-not-found"


class PartnerNotActive(Forbidden):
    """Only ``trial`` and ``active`` partners can order."""

    slug = "partner-not-active"
    title = "The partner cannot order"


class UnknownSku(DomainError):
    slug = "unknown-sku"
    title = "Unknown product"


class TerritoryViolation(DomainError):
    """An order shipping outside the partner's territories; ``violation`` must be recorded."""

    slug = "territory-violation"
    title = "Outside the partner's territories"

    def __init__(self, detail: str, violation: TerritoryViolationRecorded) -> None:
        super().__init__(detail, region=violation.region, territories=list(violation.territories))
        self.violation = violation


class CategoryNotAuthorised(DomainError):
    slug = "category-not-authorised"
    title = "Product category not authorised for the partner"


class BelowMinimumPrice(DomainError):
    slug = "below-minimum-price"
    title = "Priced below the product's minimum price"


class MixedCurrency(DomainError):
    slug = "mixed-currency"
    title = "An order's products must share one currency"


class SkuExists(Conflict):
    slug = "sku-exists"
    title = "The sku is already in the catalog"


class OrderNotFound(NotFound):
    slug = "order-not-found"


class OrderNotCancellable(Conflict):
    """Cancel is allowed only before any dispatch, and not once rejected, cancelled or delivered."""

    slug = "order-not-cancellable"
    title = "The order can no longer be cancelled"
