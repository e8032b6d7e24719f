"""Catalog and price lists, pure: given events / when command / then events."""

from __future__ import annotations

from datetime import date

import pytest

from libs.events.orders import PriceListPublished, ProductCreated
from libs.events.values import SkuPrice
from libs.runtime.errors import DomainError
from services.orders.domain.catalog import (
    CreateProduct,
    PriceList,
    PriceListVersion,
    Product,
    PublishPriceList,
    decide_create_product,
    decide_publish_price_list,
    evolve_price_list,
    round_half_up_bp,
    unit_price_for,
)
from services.orders.domain.errors import SkuExists, UnknownSku

PUMP = Product("P-1", "Pump", "pumps", 999, min_price_minor=800)
NOTICE = {"today": date(2025, 12, 1), "notice_days": 7}
"""Every version here is published well ahead of taking effect."""


def given(*events: PriceListPublished, tier: str = "gold") -> PriceList:
    state = PriceList(tier)
    for event in events:
        state = evolve_price_list(state, event)
    return state


def published(version: int, effective_from: date, discount_bp: int, **overrides: int) -> PriceListPublished:
    return PriceListPublished(
        tier="gold", version=version, effective_from=effective_from, discount_bp=discount_bp,
        overrides=[SkuPrice(sku=sku, unit_price_minor=p) for sku, p in overrides.items()])


@pytest.mark.parametrize(("amount", "bp", "expected"), [
    (1000, 1250, 125),      # exact
    (999, 1250, 125),       # 124.875 -> 125
    (3, 5000, 2),           # 1.5 -> 2 (half goes up)
    (1, 5000, 1),           # 0.5 -> 1
    (1, 4999, 0),           # 0.4999 -> 0
    (1999, 333, 67),        # 66.5667 -> 67
    (2001, 25, 5),          # 5.0025 -> 5
    (10_000, 10_000, 10_000),
    (123, 0, 0),
])
def test_discount_is_rounded_half_up_to_the_minor_unit(amount: int, bp: int, expected: int) -> None:
    assert round_half_up_bp(amount, bp) == expected


def test_unit_price_is_list_minus_the_rounded_discount_or_the_override() -> None:
    version = PriceListVersion(1, date(2026, 1, 1), 1250, {"P-2": 700})
    assert version.unit_price(PUMP) == 999 - 125
    assert version.unit_price(Product("P-2", "Valve", "valves", 1000)) == 700
    assert unit_price_for(PUMP, None) == 999


def test_the_price_list_in_force_is_the_latest_version_already_effective() -> None:
    state = given(published(1, date(2026, 1, 1), 100), published(2, date(2026, 3, 1), 200),
                  published(3, date(2026, 2, 1), 300))
    assert state.in_force(date(2025, 12, 31)) is None
    assert state.in_force(date(2026, 1, 31)).version == 1  # type: ignore[union-attr]
    assert state.in_force(date(2026, 2, 15)).version == 3  # type: ignore[union-attr]
    assert state.in_force(date(2026, 3, 1)).version == 3  # type: ignore[union-attr]


def test_publishing_gives_the_next_version_of_the_tier() -> None:
    state = given(published(1, date(2026, 1, 1), 100))
    command = PublishPriceList("gold", date(2026, 6, 1), 1500, [("P-1", 850)])
    assert decide_publish_price_list(state, command, {"P-1"}, **NOTICE) == [PriceListPublished(
        tier="gold", version=2, effective_from=date(2026, 6, 1), discount_bp=1500,
        overrides=[SkuPrice(sku="P-1", unit_price_minor=850)])]
    assert decide_publish_price_list(PriceList("silver"), PublishPriceList(
        "silver", date(2026, 1, 1), 0), set(), today=date(2025, 12, 1), notice_days=7)[0].version == 1


@pytest.mark.parametrize(("command", "known", "slug"), [
    (PublishPriceList("gold", date(2026, 1, 1), 10_001), set(), "invalid-discount"),
    (PublishPriceList("gold", date(2026, 1, 1), -1), set(), "invalid-discount"),
    (PublishPriceList("gold", date(2026, 1, 1), 0, [("P-9", 5)]), {"P-1"}, "unknown-sku"),
    (PublishPriceList("gold", date(2026, 1, 1), 0, [("P-1", 5), ("P-1", 6)]), {"P-1"}, "duplicate-sku"),
    (PublishPriceList("gold", date(2026, 1, 1), 0, [("P-1", 0)]), {"P-1"}, "invalid-price"),
])
def test_a_price_list_is_refused_when(command: PublishPriceList, known: set[str], slug: str) -> None:
    with pytest.raises(DomainError) as refused:
        decide_publish_price_list(PriceList("gold"), command, known, **NOTICE)
    assert refused.value.slug == slug
    assert isinstance(refused.value, UnknownSku) == (slug == "unknown-sku")


def test_a_product_enters_the_catalog_once() -> None:
    command = CreateProduct("P-1", "Pump", "pumps", 999, 800)
    assert decide_create_product(None, command) == [ProductCreated(
        sku="P-1", name="Pump", category="pumps", list_price_minor=999, min_price_minor=800)]
    with pytest.raises(SkuExists):
        decide_create_product(PUMP, command)


@pytest.mark.parametrize(("list_price", "minimum"), [(0, None), (-5, None), (100, 101), (100, -1)])
def test_a_product_needs_a_positive_list_price_and_a_minimum_within_it(
        list_price: int, minimum: int | None) -> None:
    with pytest.raises(DomainError) as refused:
        decide_create_product(None, CreateProduct("P-1", "Pump", "pumps", list_price, minimum))
    assert refused.value.slug == "invalid-price"
