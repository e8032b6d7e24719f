"""The refusals of the orders domain, each with its problem type (mapped to problem+json in libs)."""

from __future__ import annotations

from libs.events.orders import DealConflictRecorded, TerritoryViolationRecorded
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


class ShortNotice(DomainError):
    """A price-list version taking effect sooner than the notice period, without an override."""

    slug = "short-notice"
    title = "The price change gives less notice than required"


class NoticeNotFound(NotFound):
    slug = "price-notice-not-found"


class DealNotFound(NotFound):
    slug = "deal-not-found"


class DealConflict(Conflict):
    """Another partner holds a pending or approved, unexpired deal for the same end customer and
    products; ``conflict`` must be recorded (a channel conflict)."""

    slug = "deal-conflict"
    title = "Another partner has registered this deal"

    def __init__(self, detail: str, conflict: DealConflictRecorded) -> None:
        super().__init__(detail, skus=list(conflict.skus))
        self.conflict = conflict


class DealNotPending(Conflict):
    """Only a pending registration can be approved or rejected."""

    slug = "deal-not-pending"
    title = "The deal was already decided"


class DealExpired(DomainError):
    slug = "deal-expired"
    title = "The deal registration has expired"


class DealNotApproved(DomainError):
    slug = "deal-not-approved"
    title = "The deal registration is not approved"


class SkuNotInDeal(DomainError):
    slug = "sku-not-in-deal"
    title = "The order names a product the deal does not cover"
