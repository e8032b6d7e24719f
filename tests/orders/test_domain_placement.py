"""Placement, pure: the checks in their fixed order, then the prices fixed on the lines."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from libs.events.orders import OrderPlaced, TerritoryViolationRecorded
from libs.events.partners import (
    AgreementSigned,
    PartnerCategoriesChanged,
    PartnerRegistered,
    PartnerReinstated,
    PartnerSuspended,
    PartnerTerminated,
    PartnerTerritoriesChanged,
    PartnerTierChanged,
    TrialEnded,
)
from libs.events.values import OrderLine, PaymentTerms
from libs.runtime.errors import DomainError
from services.orders.domain.catalog import PriceListVersion, Product
from services.orders.domain.errors import TerritoryViolation
from services.orders.domain.partner_copy import PartnerCopy, evolve_partner_copy
from services.orders.domain.placement import PlaceOrder, decide_place_order

PARTNER = PartnerCopy("p1", "active", "gold", "east", ("east", "north"), ("pumps", "valves"), "credit")
PRODUCTS = {
    "P-1": Product("P-1", "Pump", "pumps", 999, min_price_minor=800),
    "V-1": Product("V-1", "Valve", "valves", 2001),
    "M-1": Product("M-1", "Motor", "motors", 5000),
}
PRICES = PriceListVersion(2, date(2026, 1, 1), 1250, {"V-1": 1500})


def command(*lines: tuple[str, int], region: str = "east") -> PlaceOrder:
    return PlaceOrder("ord_1", "p1", "PO-1", lines, region, "1 Bund Rd")


def refusal(cmd: PlaceOrder, partner: PartnerCopy | None = PARTNER,
            price_list: PriceListVersion | None = PRICES) -> str:
    with pytest.raises(DomainError) as refused:
        decide_place_order(cmd, partner, PRODUCTS, price_list)
    return f"{refused.value.status} {refused.value.slug}"


def test_prices_are_fixed_from_the_tier_price_list_in_force() -> None:
    assert decide_place_order(command(("P-1", 3), ("V-1", 2)), PARTNER, PRODUCTS, PRICES) == [
        OrderPlaced(
            order_id="ord_1", partner_id="p1", partner_ref="PO-1", lines=[
                OrderLine(sku="P-1", qty=3, category="pumps", unit_price_minor=874,
                          line_total_minor=2622),   # 999 - round_half_up(124.875)
                OrderLine(sku="V-1", qty=2, category="valves", unit_price_minor=1500,
                          line_total_minor=3000),   # the override
            ],
            ship_to_region="east", ship_to_address="1 Bund Rd", total_minor=5622,
            payment_kind="credit", price_list_version=2)]


def test_without_a_price_list_the_partner_pays_list_price() -> None:
    (placed,) = decide_place_order(command(("P-1", 2)), PARTNER, PRODUCTS, None)
    assert (placed.lines[0].unit_price_minor, placed.total_minor) == (999, 1998)


def test_a_sub_region_of_a_territory_is_inside_it() -> None:
    (placed,) = decide_place_order(command(("P-1", 1), region="east/shanghai"), PARTNER, PRODUCTS, None)
    assert placed.ship_to_region == "east/shanghai"
    assert refusal(command(("P-1", 1), region="eastern")) == "422 territory-violation"


def test_an_unknown_partner_is_not_found() -> None:
    assert refusal(command(("P-1", 1)), partner=None) == "404 partner-not-found"


@pytest.mark.parametrize("status", ["applied", "suspended", "terminated"])
def test_only_trial_and_active_partners_can_order(status: str) -> None:
    assert refusal(command(("P-1", 1)), replace(PARTNER, status=status)) == "403 partner-not-active"
    trial = decide_place_order(command(("P-1", 1)), replace(PARTNER, status="trial"), PRODUCTS, None)
    assert trial[0].order_id == "ord_1"


def test_the_checks_run_in_their_order() -> None:
    inactive = replace(PARTNER, status="suspended")
    assert refusal(command(("X-9", 1), region="west"), inactive) == "403 partner-not-active"
    assert refusal(command(("X-9", 1), region="west")) == "422 unknown-sku"
    assert refusal(command(("M-1", 1), region="west")) == "422 territory-violation"
    below = PriceListVersion(3, date(2026, 1, 1), 5000)
    assert refusal(command(("P-1", 1), ("M-1", 1)), price_list=below) == "422 category-not-authorised"
    assert refusal(command(("P-1", 1)), price_list=below) == "422 below-minimum-price"


def test_a_territory_violation_carries_the_violation_to_record() -> None:
    with pytest.raises(TerritoryViolation) as refused:
        decide_place_order(command(("P-1", 1), region="west"), PARTNER, PRODUCTS, PRICES)
    assert refused.value.violation == TerritoryViolationRecorded(
        partner_id="p1", partner_ref="PO-1", region="west", territories=["east", "north"])


def test_an_empty_categories_list_authorises_every_category() -> None:
    (placed,) = decide_place_order(command(("M-1", 1)), replace(PARTNER, categories=()), PRODUCTS, None)
    assert placed.lines[0].category == "motors"


def test_the_minimum_price_itself_is_allowed() -> None:
    at_minimum = PriceListVersion(1, date(2026, 1, 1), 0, {"P-1": 800})
    assert decide_place_order(command(("P-1", 1)), PARTNER, PRODUCTS, at_minimum)[0].total_minor == 800
    assert refusal(command(("P-1", 1)), price_list=replace(at_minimum, overrides={"P-1": 799})) \
        == "422 below-minimum-price"


@pytest.mark.parametrize(("lines", "slug"), [
    ((), "empty-order"), ((("P-1", 1), ("P-1", 2)), "duplicate-sku"), ((("P-1", 0),), "invalid-qty")])
def test_lines_must_be_non_empty_distinct_and_positive(lines: tuple, slug: str) -> None:
    assert refusal(command(*lines)) == f"422 {slug}"


def test_products_in_different_currencies_cannot_share_an_order() -> None:
    products = {**PRODUCTS, "U-1": Product("U-1", "Import", "pumps", 100, currency="USD")}
    with pytest.raises(DomainError) as refused:
        decide_place_order(command(("P-1", 1), ("U-1", 1)), PARTNER, products, None)
    assert refused.value.slug == "mixed-currency"


def test_the_partner_copy_follows_the_partners_events() -> None:
    copy = evolve_partner_copy(None, PartnerRegistered(
        partner_id="p1", name="P1", legal_id="L1", kind="agent", tier="silver", region="east",
        territories=["east"], categories=[], payment_terms=PaymentTerms(kind="prepaid")))
    assert copy == PartnerCopy("p1", "applied", "silver", "east", ("east",), (), "prepaid")
    steps = [
        (AgreementSigned(partner_id="p1", agreement_id="a", kind="trial", starts_on=date(2026, 1, 1),
                         ends_on=date(2026, 3, 1), status_after="trial"), "trial"),
        (TrialEnded(partner_id="p1", agreement_id="a", ended_on=date(2026, 3, 1),
                    status_after="applied"), "applied"),
        (PartnerSuspended(partner_id="p1", reason="late"), "suspended"),
        (PartnerReinstated(partner_id="p1", status_after="active"), "active"),
        (PartnerTerminated(partner_id="p1", reason="breach"), "terminated"),
    ]
    for event, status in steps:
        copy = evolve_partner_copy(copy, event)
        assert copy is not None and copy.status == status
    copy = evolve_partner_copy(copy, PartnerTierChanged(partner_id="p1", from_tier="silver", to_tier="gold"))
    copy = evolve_partner_copy(copy, PartnerTerritoriesChanged(partner_id="p1", territories=["west"]))
    copy = evolve_partner_copy(copy, PartnerCategoriesChanged(partner_id="p1", categories=["pumps"]))
    assert copy is not None and (copy.tier, copy.territories, copy.categories) == (
        "gold", ("west",), ("pumps",))
    assert evolve_partner_copy(None, PartnerSuspended(partner_id="p9", reason="x")) is None
