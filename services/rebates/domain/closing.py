"""Period close: the final amount of a partner under a program.

final = volume rebate on the basis
      + growth bonus (``rate_bp x basis`` when the basis beats the baseline
        period's basis by at least ``min_growth_bp``; a baseline of zero or
        less cannot be beaten by a percentage, so it pays no growth bonus)
      + timeliness bonus (``rate_bp x basis`` when the share of the partner's
        invoices issued in the period that were paid on time reaches
        ``min_on_time_bp``; no invoices, no bonus)
capped at ``cap_minor`` (``cap_cut_minor`` is what the cap took off). Each
component is rounded half-up once; a basis at or below zero earns nothing.

The same function makes the running accrual and every settlement proposal, so
what is accrued is always what a close would propose today.
"""

from __future__ import annotations

from dataclasses import dataclass

from libs.events.rebates import ProgramPublished
from libs.events.values import GrowthRule, TimelinessRule
from services.rebates.domain.arithmetic import BP, of_bp, volume_rebate


@dataclass(frozen=True)
class Performance:
    """What the bonuses look at besides the basis."""

    baseline_minor: int | None = None
    invoices_issued: int = 0
    invoices_on_time: int = 0


@dataclass(frozen=True)
class FinalAmount:
    basis_minor: int
    volume_minor: int
    tier_rate_bp: int
    growth_bonus_minor: int
    timeliness_bonus_minor: int
    final_minor: int
    cap_cut_minor: int = 0

    def components(self) -> list[dict[str, int | str]]:
        """What the amount is made of; the amounts add up to ``final_minor`` exactly."""
        parts: list[dict[str, int | str]] = [{"kind": "volume", "amount_minor": self.volume_minor}]
        if self.growth_bonus_minor:
            parts.append({"kind": "growth_bonus", "amount_minor": self.growth_bonus_minor})
        if self.timeliness_bonus_minor:
            parts.append({"kind": "timeliness_bonus", "amount_minor": self.timeliness_bonus_minor})
        if self.cap_cut_minor:
            parts.append({"kind": "cap", "amount_minor": -self.cap_cut_minor})
        return parts


def growth_reached(rule: GrowthRule, basis_minor: int, baseline_minor: int | None) -> bool:
    if baseline_minor is None or baseline_minor <= 0:
        return False
    return basis_minor * BP >= baseline_minor * (BP + rule.min_growth_bp)


def timeliness_reached(rule: TimelinessRule, issued: int, on_time: int) -> bool:
    return issued > 0 and on_time * BP >= rule.min_on_time_bp * issued


def final_amount(program: ProgramPublished, basis_minor: int, performance: Performance) -> FinalAmount:
    volume, rate = volume_rebate(basis_minor, program.tiers, program.mode)
    growth = timeliness = 0
    if basis_minor > 0:
        if program.growth and growth_reached(program.growth, basis_minor, performance.baseline_minor):
            growth = of_bp(basis_minor, program.growth.rate_bp)
        if program.timeliness and timeliness_reached(
                program.timeliness, performance.invoices_issued, performance.invoices_on_time):
            timeliness = of_bp(basis_minor, program.timeliness.rate_bp)
    earned = volume + growth + timeliness
    final = earned if program.cap_minor is None else min(earned, program.cap_minor)
    return FinalAmount(basis_minor, volume, rate, growth, timeliness, final, earned - final)
