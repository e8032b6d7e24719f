"""Placing an order: the channel-control checks, in a fixed order, then prices fixed for good.

1. the partner is known here (404 ``partner-not-found``);
2. it is ``trial`` or ``active`` (403 ``partner-not-active``);
3. every sku is in the catalog (422 ``unknown-sku``);
4. ``ship_to.region`` is one of its territories, else the attempt is recorded as a
   violation (cross-territory selling) and refused (422 ``territory-violation``);
5. every product's category is authorised, when the partner has a categories list
   (422 ``category-not-authorised``);
6. a cited deal (``deal_id``) is the partner's own (404 ``deal-not-found``), approved
   (422 ``deal-not-approved``), not expired (422 ``deal-expired``) and covers every sku
   (422 ``sku-not-in-deal``);
7. no unit price is below the product's minimum price (422 ``below-minimum-price``).
Unit price = the cited deal's price; else the tier's override, else list price -
round_half_up(list * discount_bp / 10000) under the tier's price-list version in force on the
order date (none: list price); line total = unit * qty. The order records the version
(``price_list_version``) or the deal (``deal_id``) that priced it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from libs.events.orders import OrderPlaced, TerritoryViolationRecorded
from libs.events.values import OrderLine
from libs.runtime.errors import DomainError
from services.orders.domain.catalog import PriceListVersion, Product, check_known, check_lines, unit_price_for
from services.orders.domain.deals import Deal, deal_prices
from services.orders.domain.errors import (
    BelowMinimumPrice,
    CategoryNotAuthorised,
    MixedCurrency,
    TerritoryViolation,
)
from services.orders.domain.partner_copy import PartnerCopy, ordering_partner

MAX_TOTAL_MINOR = 10**18
"""Amounts stay well inside 64-bit integers (JSON and database limits)."""


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str
    partner_id: str
    partner_ref: str
    lines: Sequence[tuple[str, int]]
    ship_to_region: str
    ship_to_address: str | None = None
    deal_id: str | None = None


def decide_place_order(
    command: PlaceOrder,
    partner: PartnerCopy | None,
    products: Mapping[str, Product],
    price_list: PriceListVersion | None,
    deal: Deal | None = None,
    today: date | None = None,
) -> list[OrderPlaced]:
    """Check the order against the partner and the catalog; fix its prices (see module doc)."""
    check_lines(command.lines, "an order", "empty-order")
    partner = ordering_partner(partner, command.partner_id)
    check_known(command.lines, products)
    if not partner.sells_into(command.ship_to_region):
        violation = TerritoryViolationRecorded(
            partner_id=partner.partner_id, partner_ref=command.partner_ref,
            region=command.ship_to_region, territories=list(partner.territories))
        raise TerritoryViolation(
            f"region {command.ship_to_region!r} is outside the partner's territories", violation)
    for sku, _ in command.lines:
        _check_category(partner, products[sku])
    if command.deal_id is not None:
        assert today is not None, "a deal is priced on the order date"
        prices = deal_prices(deal, partner.partner_id, [sku for sku, _ in command.lines], today)
        lines = [_priced_line(products[sku], qty, prices[sku]) for sku, qty in command.lines]
        version = None
    else:
        lines = [_priced_line(products[sku], qty, unit_price_for(products[sku], price_list))
                 for sku, qty in command.lines]
        version = price_list.version if price_list else None
    currencies = {products[sku].currency for sku, _ in command.lines}
    if len(currencies) > 1:
        raise MixedCurrency(f"the products are priced in {', '.join(sorted(currencies))}")
    if sum(line.line_total_minor for line in lines) > MAX_TOTAL_MINOR:
        raise DomainError("the order's total is too large", slug="amount-too-large")
    return [OrderPlaced(
        order_id=command.order_id, partner_id=partner.partner_id, partner_ref=command.partner_ref,
        lines=lines, ship_to_region=command.ship_to_region,
        ship_to_address=command.ship_to_address,
        total_minor=sum(line.line_total_minor for line in lines), currency=currencies.pop(),
        payment_kind=partner.payment_kind, price_list_version=version, deal_id=command.deal_id)]


def _check_category(partner: PartnerCopy, product: Product) -> None:
    if not partner.authorised_for(product.category):
        raise CategoryNotAuthorised(
            f"category {product.category!r} ({product.sku}) is not authorised for the partner",
            sku=product.sku, category=product.category)


def _priced_line(product: Product, qty: int, unit: int) -> OrderLine:
    if product.min_price_minor is not None and unit < product.min_price_minor:
        raise BelowMinimumPrice(
            f"{product.sku} would be priced {unit}, below its minimum {product.min_price_minor}",
            sku=product.sku, unit_price_minor=unit, min_price_minor=product.min_price_minor)
    return OrderLine(sku=product.sku, qty=qty, category=product.category, unit_price_minor=unit,
                     line_total_minor=unit * qty)
