"""The catalog and the tier price lists, and the one pricing rule.

A product has a list price and, optionally, a minimum price no order line may
go below. Each tier has a versioned price list: a discount off list price
(``discount_bp``) plus fixed per-sku prices (overrides). On a given day the
price list in force is the latest version whose ``effective_from`` has come;
a tier without one pays list price.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from libs.events.base import DomainEvent
from libs.events.orders import PriceListPublished, ProductCreated
from libs.events.values import DEFAULT_CURRENCY, SkuPrice
from libs.runtime.errors import DomainError
from services.orders.domain.errors import SkuExists, UnknownSku
from services.orders.domain.notices import check_notice

FULL_DISCOUNT_BP = 10_000


def round_half_up_bp(amount_minor: int, rate_bp: int) -> int:
    """``amount * rate_bp / 10000`` rounded half-up to the minor unit (non-negative ints)."""
    return (amount_minor * rate_bp + 5_000) // 10_000


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    list_price_minor: int
    min_price_minor: int | None = None
    currency: str = DEFAULT_CURRENCY


@dataclass(frozen=True)
class CreateProduct:
    sku: str
    name: str
    category: str
    list_price_minor: int
    min_price_minor: int | None = None
    currency: str = DEFAULT_CURRENCY


def decide_create_product(existing: Product | None, command: CreateProduct) -> list[ProductCreated]:
    """A sku enters the catalog once; list price > 0; a minimum price lies in 0..list price."""
    if existing is not None:
        raise SkuExists(f"sku {command.sku!r} is already in the catalog")
    if command.list_price_minor <= 0:
        raise DomainError("list_price_minor must be greater than 0", slug="invalid-price")
    minimum = command.min_price_minor
    if minimum is not None and not 0 <= minimum <= command.list_price_minor:
        raise DomainError("min_price_minor must lie between 0 and list_price_minor",
                          slug="invalid-price")
    return [ProductCreated(sku=command.sku, name=command.name, category=command.category,
                           list_price_minor=command.list_price_minor, min_price_minor=minimum,
                           currency=command.currency)]


def check_lines(lines: Sequence[tuple[str, int]], what: str, empty_slug: str) -> None:
    """``(sku, qty)`` lines of an order or a deal: at least one, one per sku, each qty > 0."""
    if not lines:
        raise DomainError(f"{what} needs at least one line", slug=empty_slug)
    skus = [sku for sku, _ in lines]
    if len(set(skus)) != len(skus):
        raise DomainError("each sku may appear on one line only", slug="duplicate-sku")
    if any(qty <= 0 for _, qty in lines):
        raise DomainError("qty must be greater than 0", slug="invalid-qty")


def check_known(lines: Sequence[tuple[str, int]], known: Collection[str]) -> None:
    """Every line's sku is in the catalog (422 ``unknown-sku``)."""
    unknown = [sku for sku, _ in lines if sku not in known]
    if unknown:
        raise UnknownSku(f"unknown sku: {', '.join(unknown)}", skus=unknown)


@dataclass(frozen=True)
class PriceListVersion:
    version: int
    effective_from: date
    discount_bp: int
    overrides: Mapping[str, int] = field(default_factory=dict)
    currency: str = DEFAULT_CURRENCY
    override_reason: str | None = None

    def unit_price(self, product: Product) -> int:
        """The sku's override if any, else list price - round_half_up(list price * discount)."""
        if product.sku in self.overrides:
            return self.overrides[product.sku]
        return product.list_price_minor - round_half_up_bp(product.list_price_minor, self.discount_bp)


@dataclass(frozen=True)
class PriceList:
    tier: str
    versions: tuple[PriceListVersion, ...] = ()

    @property
    def latest_version(self) -> int:
        return self.versions[-1].version if self.versions else 0

    def in_force(self, day: date) -> PriceListVersion | None:
        """The latest version (highest number) whose ``effective_from`` is on or before ``day``."""
        started = [v for v in self.versions if v.effective_from <= day]
        return max(started, key=lambda v: v.version) if started else None


def evolve_price_list(state: PriceList, event: DomainEvent) -> PriceList:
    if not isinstance(event, PriceListPublished):
        return state
    version = PriceListVersion(
        version=event.version, effective_from=event.effective_from, discount_bp=event.discount_bp,
        overrides={o.sku: o.unit_price_minor for o in event.overrides}, currency=event.currency,
        override_reason=event.override_reason)
    return PriceList(tier=event.tier, versions=(*state.versions, version))


def unit_price_for(product: Product, price_list: PriceListVersion | None) -> int:
    """The unit price under the price list in force; without one, list price (discount 0)."""
    return price_list.unit_price(product) if price_list else product.list_price_minor


@dataclass(frozen=True)
class PublishPriceList:
    tier: str
    effective_from: date
    discount_bp: int
    overrides: Sequence[tuple[str, int]] = ()
    override_reason: str | None = None


def decide_publish_price_list(
    state: PriceList, command: PublishPriceList, known_skus: Collection[str], *, today: date,
    notice_days: int,
) -> list[PriceListPublished]:
    """A new version of the tier's prices: discount 0..10000 bp, overrides > 0 on known skus, once
    each, taking effect no sooner than the notice period unless an override reason is given."""
    if not 0 <= command.discount_bp <= FULL_DISCOUNT_BP:
        raise DomainError("discount_bp must lie between 0 and 10000", slug="invalid-discount")
    skus = [sku for sku, _ in command.overrides]
    duplicates = sorted({sku for sku in skus if skus.count(sku) > 1})
    if duplicates:
        raise DomainError(f"overrides name a sku more than once: {', '.join(duplicates)}",
                          slug="duplicate-sku")
    unknown = sorted(sku for sku in skus if sku not in known_skus)
    if unknown:
        raise UnknownSku(f"unknown sku in overrides: {', '.join(unknown)}", skus=unknown)
    if any(price <= 0 for _, price in command.overrides):
        raise DomainError("an override's unit_price_minor must be greater than 0", slug="invalid-price")
    check_notice(command.effective_from, today, notice_days, command.override_reason)
    return [PriceListPublished(
        tier=command.tier, version=state.latest_version + 1, effective_from=command.effective_from,
        discount_bp=command.discount_bp,
        overrides=[SkuPrice(sku=sku, unit_price_minor=price) for sku, price in command.overrides],
        override_reason=command.override_reason)]
