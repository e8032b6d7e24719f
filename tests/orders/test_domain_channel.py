"""Channel rules as given events / when command / then events: the notice window, notices and
their acknowledgement, deal registration, conflicts, approval, expiry and deal pricing."""

from __future__ import annotations

from datetime import date
from functools import reduce

import pytest

from libs.events.base import DomainEvent
from libs.events.orders import (
    DealApproved,
    DealRegistered,
    DealRejected,
    PriceChangeAcknowledged,
)
from libs.events.values import SkuPrice, SkuQty
from libs.runtime.errors import DomainError
from services.orders.domain.catalog import Product
from services.orders.domain.deals import (
    CustomerDeals,
    RegisterDeal,
    customer_key,
    deal_prices,
    decide_approve,
    decide_register,
    decide_reject,
    evolve_customer_deals,
)
from services.orders.domain.errors import DealConflict
from services.orders.domain.notices import (
    Notice,
    check_notice,
    decide_acknowledge,
    decide_notify,
    evolve_notice,
)
from services.orders.domain.partner_copy import PartnerCopy

TODAY = date(2026, 3, 1)
PRODUCTS = {"P-1": Product("P-1", "Pump", "pumps", 1000, 800), "V-1": Product("V-1", "Valve", "valves", 500)}


def partner(partner_id: str, status: str = "active") -> PartnerCopy:
    return PartnerCopy(partner_id, status, "gold", "east", ("east",), (), "credit")


def given(*events: DomainEvent) -> CustomerDeals:
    return reduce(evolve_customer_deals, events, CustomerDeals())


def registered(deal_id: str, partner_id: str, *skus: str, expires_on: date = date(2026, 4, 30),
               code: str | None = None) -> DealRegistered:
    return DealRegistered(deal_id=deal_id, partner_id=partner_id, end_customer="Acme",
                          customer_key="acme", customer_code=code,
                          lines=[SkuQty(sku=sku, qty=10) for sku in skus], expires_on=expires_on)


def register(deal_id: str, partner_id: str, *skus: str, code: str | None = None,
             expires_on: date = date(2026, 4, 30)) -> RegisterDeal:
    return RegisterDeal(deal_id, partner_id, " ACME ", [(sku, 10) for sku in skus], expires_on, code)


# -- the notice window ------------------------------------------------------------------


@pytest.mark.parametrize(("effective_from", "reason", "refused"), [
    (date(2026, 3, 8), None, False),     # exactly 7 days
    (date(2026, 3, 7), None, True),      # 6 days
    (date(2026, 2, 1), None, True),      # backdated
    (date(2026, 3, 1), "cost shock", False),
    (date(2026, 2, 1), "correction", False),
])
def test_a_version_needs_the_notice_period_unless_overridden(
        effective_from: date, reason: str | None, refused: bool) -> None:
    if refused:
        with pytest.raises(DomainError) as refusal:
            check_notice(effective_from, TODAY, 7, reason)
        assert refusal.value.slug == "short-notice"
    else:
        check_notice(effective_from, TODAY, 7, reason)


def test_the_notice_period_is_a_setting() -> None:
    check_notice(TODAY, TODAY, 0, None)
    with pytest.raises(DomainError):
        check_notice(date(2026, 3, 20), TODAY, 30, None)


def test_each_partner_acknowledges_its_own_notice_once() -> None:
    (notified,) = decide_notify("gold", 2, date(2026, 3, 15), [("pn_1", "p1")])
    notice = evolve_notice(Notice(), notified)
    assert decide_acknowledge(notice, "p1") == [PriceChangeAcknowledged(
        notice_id="pn_1", partner_id="p1", tier="gold", version=2)]
    with pytest.raises(DomainError) as other:
        decide_acknowledge(notice, "p2")
    assert other.value.status == 404
    with pytest.raises(DomainError):
        decide_acknowledge(Notice(), "p1")
    acknowledged = evolve_notice(notice, decide_acknowledge(notice, "p1")[0])
    assert acknowledged.acknowledged and decide_acknowledge(acknowledged, "p1") == []


# -- deal registration -------------------------------------------------------------------


def test_the_end_customer_is_matched_by_its_normalised_name() -> None:
    assert customer_key("  ACME\tWater   Co ") == customer_key("acme water co") == "acme water co"
    assert customer_key("\uff21\uff23\uff2d\uff25") == "acme"  # full-width letters fold too


def test_a_registration_is_pending_until_decided() -> None:
    (event,) = decide_register(CustomerDeals(), register("d1", "p1", "P-1"), partner("p1"), PRODUCTS, TODAY)
    assert (event.customer_key, event.end_customer, event.partner_id) == ("acme", " ACME ", "p1")
    assert given(event).deals["d1"].status == "pending"


def test_another_partners_overlapping_registration_is_a_conflict_to_record() -> None:
    state = given(registered("d1", "p1", "P-1", "V-1"))
    with pytest.raises(DealConflict) as refused:
        decide_register(state, register("d2", "p2", "V-1"), partner("p2"), PRODUCTS, TODAY)
    conflict = refused.value.conflict
    assert (conflict.deal_id, conflict.partner_id, conflict.conflicting_deal_id,
            conflict.conflicting_partner_id, conflict.skus) == ("d2", "p2", "d1", "p1", ["V-1"])
    assert refused.value.status == 409 and refused.value.slug == "deal-conflict"
    assert given(registered("d1", "p1", "P-1"), conflict).deals["d2"].status == "refused"


@pytest.mark.parametrize(("history", "command"), [
    ((registered("d1", "p1", "P-1"),), register("d2", "p2", "V-1")),               # other products
    ((registered("d1", "p1", "P-1"),), register("d2", "p1", "P-1")),               # same partner
    ((registered("d1", "p1", "P-1", expires_on=date(2026, 2, 28)),),
     register("d2", "p2", "P-1")),                                                 # expired
    ((registered("d1", "p1", "P-1"),
      DealRejected(deal_id="d1", partner_id="p1", reason="no")), register("d2", "p2", "P-1")),
    ((registered("d1", "p1", "P-1", code="91310000AAAA00001X"),),
     register("d2", "p2", "P-1", code="91310000BBBB00002Y")),                      # another company
])
def test_no_conflict_when_the_holding_deal_does_not_protect(
        history: tuple[DomainEvent, ...], command: RegisterDeal) -> None:
    assert decide_register(given(*history), command, partner(command.partner_id), PRODUCTS, TODAY)


@pytest.mark.parametrize(("command", "who", "slug"), [
    (register("d1", "p1"), partner("p1"), "empty-deal"),
    (register("d1", "p1", "NOPE"), partner("p1"), "unknown-sku"),
    (register("d1", "p1", "P-1", expires_on=date(2026, 2, 28)), partner("p1"), "invalid-expiry"),
    (register("d1", "p1", "P-1"), partner("p1", "suspended"), "partner-not-active"),
    (register("d1", "p1", "P-1"), None, "partner-not-found"),
])
def test_a_bad_registration_is_refused(command: RegisterDeal, who: PartnerCopy | None, slug: str) -> None:
    with pytest.raises(DomainError) as refused:
        decide_register(CustomerDeals(), command, who, PRODUCTS, TODAY)
    assert refused.value.slug == slug


def test_approval_sets_deal_prices_never_below_the_minimum() -> None:
    state = given(registered("d1", "p1", "P-1", "V-1"))
    with pytest.raises(DomainError) as low:
        decide_approve(state, "d1", [("P-1", 799), ("V-1", 400)], PRODUCTS, TODAY)
    assert low.value.slug == "below-minimum-price"
    with pytest.raises(DomainError) as partial:
        decide_approve(state, "d1", [("P-1", 850)], PRODUCTS, TODAY)
    assert partial.value.slug == "deal-prices-mismatch"
    with pytest.raises(DomainError) as late:
        decide_approve(state, "d1", [("P-1", 850), ("V-1", 400)], PRODUCTS, date(2026, 5, 1))
    assert late.value.slug == "deal-expired"
    (approved,) = decide_approve(state, "d1", [("P-1", 850), ("V-1", 400)], PRODUCTS, TODAY)
    assert approved == DealApproved(deal_id="d1", partner_id="p1", prices=[
        SkuPrice(sku="P-1", unit_price_minor=850), SkuPrice(sku="V-1", unit_price_minor=400)])
    decided = given(registered("d1", "p1", "P-1", "V-1"), approved)
    with pytest.raises(DomainError) as again:
        decide_reject(decided, "d1", "late", TODAY)
    assert again.value.slug == "deal-not-pending"


def test_an_approved_deal_prices_its_own_partners_orders_until_it_expires() -> None:
    deal = given(registered("d1", "p1", "P-1"), DealApproved(
        deal_id="d1", partner_id="p1", prices=[SkuPrice(sku="P-1", unit_price_minor=850)])).deals["d1"]
    assert deal_prices(deal, "p1", ["P-1"], date(2026, 4, 30)) == {"P-1": 850}
    for who, skus, day, slug in (("p2", ["P-1"], TODAY, "deal-not-found"),
                                 ("p1", ["V-1"], TODAY, "sku-not-in-deal"),
                                 ("p1", ["P-1"], date(2026, 5, 1), "deal-expired")):
        with pytest.raises(DomainError) as refused:
            deal_prices(deal, who, skus, day)
        assert refused.value.slug == slug
    pending = given(registered("d1", "p1", "P-1")).deals["d1"]
    with pytest.raises(DomainError) as not_yet:
        deal_prices(pending, "p1", ["P-1"], TODAY)
    assert not_yet.value.slug == "deal-not-approved"
