"""Who a program applies to, and which invoice lines count toward it.

An empty list means no restriction on that axis. ``tiers``, ``regions`` and
``partner_ids`` select partners (by the partner's current tier and region from
the local copy of the partners service's events); ``categories`` selects the
invoice and credit-note lines that count toward the basis.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from libs.events.values import Eligibility


@dataclass(frozen=True)
class PartnerProfile:
    """The local copy of a partner: what eligibility looks at (``None``: not known yet)."""

    partner_id: str
    tier: str | None = None
    region: str | None = None
    parent_id: str | None = None
    """The parent it was registered with."""
    parent_changes: tuple[tuple[date, str | None], ...] = ()
    """``(effective_from, parent_id)`` of each later change (``domain.rollup.parent_on``)."""


def partner_eligible(rules: Eligibility, partner: PartnerProfile) -> bool:
    """Does the program apply to this partner? Unknown tier/region fail a restricted axis."""
    if rules.partner_ids and partner.partner_id not in rules.partner_ids:
        return False
    if rules.tiers and partner.tier not in rules.tiers:
        return False
    return not (rules.regions and partner.region not in rules.regions)


def line_counts(rules: Eligibility, category: str) -> bool:
    """Does a line of this product category count toward the program's basis?"""
    return not rules.categories or category in rules.categories


def eligible_total(rules: Eligibility, lines: Iterable[tuple[str, int]]) -> int:
    """The sum of the ``(category, amount_minor)`` lines that count."""
    return sum(amount for category, amount in lines if line_counts(rules, category))
