"""Deal registration (报备): a partner registers an end-customer deal before selling it.

- The deals of one end customer form one aggregate, so two registrations for
  the same customer are decided one after the other. The customer is matched
  by its normalised name (Unicode NFKC, case folded, runs of whitespace made
  one space); two registrations that both give a unified social credit code
  and give different ones are different customers of the same name.
- A registration names products and expected quantities and an expiry date
  (today or later); it is ``pending`` until sales approves it with a deal
  price for each of its products (never below a product's minimum price) or
  rejects it.
- While a partner's deal is pending or approved and unexpired, another
  partner's registration for the same customer and any of the same products
  is refused (409 ``deal-conflict``) and recorded as a channel conflict
  (``DealConflictRecorded``, status ``refused``).
- An approved deal prices the orders its own partner places citing it
  (``deal_id``) until its expiry date has passed, for the deal's products only.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from libs.events.base import DomainEvent
from libs.events.orders import DealApproved, DealConflictRecorded, DealRegistered, DealRejected
from libs.events.values import SkuPrice, SkuQty
from libs.runtime.errors import DomainError
from services.orders.domain.catalog import Product, check_known, check_lines
from services.orders.domain.errors import (
    BelowMinimumPrice,
    DealConflict,
    DealExpired,
    DealNotApproved,
    DealNotFound,
    DealNotPending,
    MixedCurrency,
    SkuNotInDeal,
)
from services.orders.domain.partner_copy import PartnerCopy, ordering_partner

HOLDING = ("pending", "approved")
"""The statuses in which a deal protects its partner (until it expires)."""


def customer_key(end_customer: str) -> str:
    """The end customer's name as deals are matched: NFKC, case folded, whitespace collapsed."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", end_customer)).strip().casefold()


def customer_stream_key(key: str) -> str:
    """A short, stable stream key for a customer key of any length and script."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Deal:
    deal_id: str
    partner_id: str
    end_customer: str
    customer_key: str
    customer_code: str | None
    lines: tuple[tuple[str, int], ...]
    expires_on: date
    status: str = "pending"
    prices: Mapping[str, int] = field(default_factory=dict)
    reason: str | None = None
    conflict: Mapping[str, Any] | None = None

    @property
    def skus(self) -> frozenset[str]:
        return frozenset(sku for sku, _ in self.lines)

    def expired(self, today: date) -> bool:
        """A deal lasts through its expiry date."""
        return self.expires_on < today

    def holds(self, today: date) -> bool:
        return self.status in HOLDING and not self.expired(today)

    def same_customer(self, code: str | None) -> bool:
        """Same normalised name; different credit codes (both given) mean different customers."""
        return self.customer_code is None or code is None or self.customer_code == code


@dataclass(frozen=True)
class CustomerDeals:
    """Every registration for one end customer (by ``customer_key``)."""

    deals: Mapping[str, Deal] = field(default_factory=dict)

    def get(self, deal_id: str) -> Deal:
        deal = self.deals.get(deal_id)
        if deal is None or deal.status == "refused":
            raise DealNotFound(f"no deal {deal_id!r}")
        return deal


def _deal(event: DealRegistered | DealConflictRecorded, status: str) -> Deal:
    return Deal(event.deal_id, event.partner_id, event.end_customer, event.customer_key,
                event.customer_code, tuple((line.sku, line.qty) for line in event.lines),
                event.expires_on, status)


def evolve_customer_deals(state: CustomerDeals, event: DomainEvent) -> CustomerDeals:
    """Pure and total: an event that is not about a deal leaves the state as is."""
    deals = dict(state.deals)
    match event:
        case DealRegistered():
            deals[event.deal_id] = _deal(event, "pending")
        case DealConflictRecorded():
            deals[event.deal_id] = replace(_deal(event, "refused"), conflict={
                "deal_id": event.conflicting_deal_id, "partner_id": event.conflicting_partner_id,
                "skus": list(event.skus)})
        case DealApproved() if event.deal_id in deals:
            deals[event.deal_id] = replace(deals[event.deal_id], status="approved",
                                           prices={p.sku: p.unit_price_minor for p in event.prices})
        case DealRejected() if event.deal_id in deals:
            deals[event.deal_id] = replace(deals[event.deal_id], status="rejected", reason=event.reason)
        case _:
            return state
    return CustomerDeals(deals)


@dataclass(frozen=True)
class RegisterDeal:
    deal_id: str
    partner_id: str
    end_customer: str
    lines: Sequence[tuple[str, int]]
    expires_on: date
    customer_code: str | None = None


def decide_register(state: CustomerDeals, command: RegisterDeal, partner: PartnerCopy | None,
                    known_skus: Collection[str], today: date) -> list[DealRegistered]:
    """Register the deal, or refuse it with the conflict to record (see the module doc)."""
    check_lines(command.lines, "a deal", "empty-deal")
    partner = ordering_partner(partner, command.partner_id)
    check_known(command.lines, known_skus)
    if command.expires_on < today:
        raise DomainError("expires_on must not be before today", slug="invalid-expiry")
    key = customer_key(command.end_customer)
    lines = [SkuQty(sku=sku, qty=qty) for sku, qty in command.lines]
    skus = {sku for sku, _ in command.lines}
    for held in sorted(state.deals.values(), key=lambda d: d.deal_id):
        overlap = sorted(skus & held.skus)
        if (held.partner_id != partner.partner_id and held.holds(today) and overlap
                and held.same_customer(command.customer_code)):
            raise DealConflict(
                "another partner has registered a deal for this end customer and these products",
                DealConflictRecorded(
                    deal_id=command.deal_id, partner_id=partner.partner_id,
                    end_customer=command.end_customer, customer_key=key,
                    customer_code=command.customer_code, lines=lines, expires_on=command.expires_on,
                    conflicting_deal_id=held.deal_id, conflicting_partner_id=held.partner_id,
                    skus=overlap))
    return [DealRegistered(deal_id=command.deal_id, partner_id=partner.partner_id,
                           end_customer=command.end_customer, customer_key=key,
                           customer_code=command.customer_code, lines=lines,
                           expires_on=command.expires_on)]


def _pending(state: CustomerDeals, deal_id: str, today: date) -> Deal:
    deal = state.get(deal_id)
    if deal.status != "pending":
        raise DealNotPending(f"deal {deal_id!r} is {deal.status}", deal_status=deal.status)
    if deal.expired(today):
        raise DealExpired(f"deal {deal_id!r} expired on {deal.expires_on.isoformat()}")
    return deal


def decide_approve(state: CustomerDeals, deal_id: str, prices: Sequence[tuple[str, int]],
                   products: Mapping[str, Product], today: date) -> list[DealApproved]:
    """Approve a pending, unexpired deal with one deal price per product, none below its minimum."""
    deal = _pending(state, deal_id, today)
    skus = [sku for sku, _ in prices]
    if len(set(skus)) != len(skus) or set(skus) != deal.skus:
        raise DomainError("give exactly one unit_price_minor for each of the deal's products: "
                          + ", ".join(sorted(deal.skus)), slug="deal-prices-mismatch")
    for sku, price in prices:
        if price <= 0:
            raise DomainError("unit_price_minor must be greater than 0", slug="invalid-price")
        minimum = products[sku].min_price_minor if sku in products else None
        if minimum is not None and price < minimum:
            raise BelowMinimumPrice(f"{sku} would be priced {price}, below its minimum {minimum}",
                                    sku=sku, unit_price_minor=price, min_price_minor=minimum)
    currencies = {products[sku].currency for sku, _ in prices if sku in products}
    if len(currencies) > 1:
        raise MixedCurrency(f"the products are priced in {', '.join(sorted(currencies))}")
    return [DealApproved(deal_id=deal_id, partner_id=deal.partner_id,
                         prices=[SkuPrice(sku=sku, unit_price_minor=price) for sku, price in prices],
                         **({"currency": currencies.pop()} if currencies else {}))]


def decide_reject(state: CustomerDeals, deal_id: str, reason: str, today: date) -> list[DealRejected]:
    """Reject a pending deal (an expired one may be rejected too, to close it)."""
    deal = state.get(deal_id)
    if deal.status != "pending":
        raise DealNotPending(f"deal {deal_id!r} is {deal.status}", deal_status=deal.status)
    return [DealRejected(deal_id=deal_id, partner_id=deal.partner_id, reason=reason)]


def deal_prices(deal: Deal | None, partner_id: str, skus: Collection[str], today: date) -> Mapping[str, int]:
    """The deal prices for an order of ``partner_id`` naming ``skus``, or why the deal cannot price it."""
    if deal is None or deal.partner_id != partner_id or deal.status == "refused":
        raise DealNotFound("no such deal for the partner")
    if deal.status != "approved":
        raise DealNotApproved(f"deal {deal.deal_id!r} is {deal.status}", deal_status=deal.status)
    if deal.expired(today):
        raise DealExpired(f"deal {deal.deal_id!r} expired on {deal.expires_on.isoformat()}")
    outside = sorted(set(skus) - deal.skus)
    if outside:
        raise SkuNotInDeal(f"the deal does not cover {', '.join(outside)}", skus=outside)
    return deal.prices


def deal_document(deal: Deal) -> dict[str, Any]:
    return {"id": deal.deal_id, "partner_id": deal.partner_id, "end_customer": deal.end_customer,
            "customer_key": deal.customer_key, "customer_code": deal.customer_code,
            "lines": [{"sku": sku, "qty": qty, "unit_price_minor": deal.prices.get(sku)}
                      for sku, qty in deal.lines],
            "expires_on": deal.expires_on.isoformat(), "status": deal.status,
            "reject_reason": deal.reason, "conflict": dict(deal.conflict) if deal.conflict else None}


def deal_of(body: Mapping[str, Any]) -> Deal:
    """A deal from its document (what placement reads)."""
    return Deal(body["id"], body["partner_id"], body["end_customer"], body["customer_key"],
                body["customer_code"], tuple((line["sku"], line["qty"]) for line in body["lines"]),
                date.fromisoformat(body["expires_on"]), body["status"],
                {line["sku"]: line["unit_price_minor"] for line in body["lines"]
                 if line["unit_price_minor"] is not None}, body["reject_reason"], body["conflict"])
