"""Sub-dealer roll-up: whose basis a partner's sales count toward under a program.

A program's ``rollup`` says it: ``self`` (the partner's own basis only, the
default), ``parent`` (its parent's basis instead; a partner without a parent on
that date counts for itself) or ``both``. One level: a sub-dealer's sales reach
its parent, not the parent's parent.

The parent is the one in effect on the sale's date (the invoice's ``issued_on``;
for a return, the date of the sale it reverses): a parent change takes effect
from its ``effective_from`` on and never moves a sale dated before it, so a
settled period keeps its sources. Each side must be eligible for the program
on its own (tier, region, partner ids).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from libs.events.values import Rollup
from services.rebates.domain.eligibility import PartnerProfile
from services.rebates.domain.ledger import Contribution


def parent_on(profile: PartnerProfile, day: date) -> str | None:
    """The partner's parent in effect on ``day``: the registered one, then each change from its date."""
    parent = profile.parent_id
    for effective_from, parent_id in sorted(profile.parent_changes, key=lambda change: change[0]):
        if effective_from <= day:
            parent = parent_id
    return parent


def counts_for_self(rollup: Rollup, parent_id: str | None) -> bool:
    return rollup != "parent" or parent_id is None


def counts_for_parent(rollup: Rollup, parent_id: str | None) -> bool:
    return parent_id is not None and rollup != "self"


def with_parent_change(profile: PartnerProfile, effective_from: date,
                       parent_id: str | None) -> PartnerProfile:
    """The profile after a parent change (a repeated change is kept once)."""
    change = (effective_from, parent_id)
    if change in profile.parent_changes:
        return profile
    return replace(profile, parent_changes=(*profile.parent_changes, change))


def attribute(rollup: Rollup, partner_id: str, parent_id: str | None,
              contributions: list[Contribution]) -> list[tuple[str, list[Contribution]]]:
    """Whose basis a partner's contributions count toward: ``(beneficiary, contributions)`` pairs.

    Those the parent counts name the sub-dealer (``partner_id``).
    """
    found: list[tuple[str, list[Contribution]]] = []
    if contributions and counts_for_self(rollup, parent_id):
        found.append((partner_id, contributions))
    if contributions and parent_id is not None and counts_for_parent(rollup, parent_id):
        found.append((parent_id, [replace(c, partner_id=partner_id) for c in contributions]))
    return found
