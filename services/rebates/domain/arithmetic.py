"""Exact rebate arithmetic on integer minor units and basis points.

Rounding is half-up to the minor unit and happens once, on the total: a
running accrual is always recomputed from the whole basis, never summed from
rounded per-event amounts.
"""

from __future__ import annotations

from collections.abc import Sequence

from libs.events.values import ProgramMode, RebateTier, half_up

BP = 10_000


def of_bp(amount_minor: int, rate_bp: int) -> int:
    """``amount x rate_bp / 10000``, half-up: the rounding the whole system uses."""
    return half_up(amount_minor * rate_bp, BP)


def reached_tier(tiers: Sequence[RebateTier], basis_minor: int) -> RebateTier | None:
    """The highest tier whose threshold the basis has reached (``None`` below the first one)."""
    reached = [tier for tier in tiers if tier.from_minor <= basis_minor]
    return reached[-1] if reached else None


def volume_rebate(
    basis_minor: int, tiers: Sequence[RebateTier], mode: ProgramMode
) -> tuple[int, int]:
    """``(accrued_minor, tier_rate_bp)`` for a basis under volume tiers.

    Retroactive: the rate of the highest tier reached applies to the whole
    basis. Incremental: each band ``[from_i, from_i+1)`` is paid at its own
    rate. A basis at or below zero (returns exceeding sales) earns nothing.
    ``tier_rate_bp`` is the rate of the highest tier reached (0 below the first).
    """
    top = reached_tier(tiers, basis_minor)
    rate = top.rate_bp if top else 0
    if basis_minor <= 0 or top is None:
        return 0, rate
    if mode == "retroactive":
        return of_bp(basis_minor, rate), rate
    raw = 0
    for index, tier in enumerate(tiers):
        upper = tiers[index + 1].from_minor if index + 1 < len(tiers) else None
        top_of_band = basis_minor if upper is None else min(basis_minor, upper)
        raw += max(0, top_of_band - tier.from_minor) * tier.rate_bp
    return half_up(raw, BP), rate


def share_of(amount_minor: int, part_minor: int, whole_minor: int) -> int:
    """``amount x part / whole`` half-up (0 when the whole is 0): an eligible share of cash."""
    if whole_minor == 0:
        return 0
    return half_up(amount_minor * part_minor, whole_minor)
