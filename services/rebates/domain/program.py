"""The program aggregate: published once, settled through dates while open, closed for good.

Status (stored): ``open`` from publication until the first close: sources in the
period accrue, and ``settle`` pays interim amounts (earned through a date minus
what was settled before). ``final`` after a close: the final settlement is
proposed, no interim settles any more, and only corrections still move it —
documents dated in the period that arrive late and returns of goods invoiced in
it — each proposing a true-up at once (closing again re-proposes it too). The
API also shows ``closed`` for an ``open`` program whose period has ended: no new
sale counts toward it, and it awaits its final close (``shown_status``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from itertools import pairwise

from libs.events.base import DomainEvent
from libs.events.rebates import ProgramClosed, ProgramPublished, ProgramSettled
from libs.events.values import (
    CoopRule,
    Eligibility,
    GrowthRule,
    ProgramBasis,
    ProgramKind,
    ProgramMode,
    RebateTier,
    Rollup,
    TimelinessRule,
)
from services.rebates.domain.arithmetic import BP
from services.rebates.domain.errors import (
    InvalidProgram,
    InvalidSettlementDate,
    NotCoopProgram,
    ProgramAlreadyPublished,
    ProgramFinal,
    ProgramNotFound,
)


@dataclass(frozen=True)
class PublishProgram:
    """Finance asks to publish a volume program with optional bonuses and a cap."""

    program_id: str
    name: str
    starts_on: date
    ends_on: date
    basis: ProgramBasis
    mode: ProgramMode
    tiers: tuple[RebateTier, ...]
    eligibility: Eligibility
    growth: GrowthRule | None
    timeliness: TimelinessRule | None
    cap_minor: int | None
    currency: str
    published_by: str
    rollup: Rollup = "self"
    kind: ProgramKind = "volume"
    coop: CoopRule | None = None


@dataclass(frozen=True)
class ProgramState:
    definition: ProgramPublished | None = None
    status: str = "new"
    closes: int = 0
    last_closed_by: str | None = None
    settled_through: date | None = None


def evolve(state: ProgramState, event: DomainEvent) -> ProgramState:
    if isinstance(event, ProgramPublished):
        return replace(state, definition=event, status="open")
    if isinstance(event, ProgramClosed):
        return replace(state, status="final", closes=state.closes + 1, last_closed_by=event.closed_by)
    if isinstance(event, ProgramSettled):
        return replace(state, settled_through=event.through)
    return state


def shown_status(status: str, ends_on: date, today: date) -> str:
    """``closed`` for an open program whose period has ended; otherwise the stored status."""
    return "closed" if status == "open" and ends_on < today else status


def rule_problems(
    starts_on: date, ends_on: date, tiers: tuple[RebateTier, ...] | list[RebateTier],
    growth: GrowthRule | None,
) -> list[str]:
    """What is wrong with a program's period, tiers and baseline (empty: nothing)."""
    problems = []
    if ends_on < starts_on:
        problems.append("ends_on must not be before starts_on")
    if not tiers:
        problems.append("tiers must not be empty")
    for tier in tiers:
        if tier.from_minor < 0:
            problems.append("tier from_minor must be 0 or more")
        if not 0 <= tier.rate_bp <= BP:
            problems.append("tier rate_bp must be between 0 and 10000")
    if any(b.from_minor <= a.from_minor for a, b in pairwise(tiers)):
        problems.append("tier from_minor must be strictly increasing")
    if growth is not None:
        if growth.baseline_to < growth.baseline_from:
            problems.append("growth baseline_to must not be before baseline_from")
        if growth.baseline_to >= starts_on:
            problems.append("growth baseline must end before the program starts")
    return problems


def kind_problems(kind: str, *, basis: str | None, mode: str | None, tiers: bool, bonuses: bool,
                  coop: CoopRule | None, ends_on: date) -> list[str]:
    """A volume program names its basis, mode and tiers; a co-op fund only its ``coop`` rule."""
    if kind == "volume":
        problems = [f"{name} is required" for name, value in (("basis", basis), ("mode", mode)) if not value]
        return problems + (["coop applies only to a program of kind coop"] if coop else [])
    if coop is None:
        return ["a co-op program needs coop: {share_bp, match_bp, expires_on}"]
    problems = [f"a co-op program takes no {name}" for name, given in (
        ("basis", basis), ("mode", mode), ("tiers", tiers), ("growth, timeliness or cap_minor", bonuses))
        if given]
    if not 0 <= coop.share_bp <= BP or not 0 <= coop.match_bp <= BP:
        problems.append("coop share_bp and match_bp must be between 0 and 10000")
    if coop.expires_on < ends_on:
        problems.append("coop expires_on must not be before ends_on")
    return problems


def decide_publish(state: ProgramState, command: PublishProgram) -> list[ProgramPublished]:
    if state.definition is not None:
        raise ProgramAlreadyPublished(f"program {command.program_id} is already published")
    problems = rule_problems(command.starts_on, command.ends_on, command.tiers, command.growth)
    if command.kind == "coop":
        problems += kind_problems("coop", basis=None, mode=None, tiers=False,
                                  bonuses=bool(command.growth or command.timeliness or command.cap_minor),
                                  coop=command.coop, ends_on=command.ends_on)
    if command.cap_minor is not None and command.cap_minor < 0:
        problems.append("cap_minor must be 0 or more")
    if problems:
        raise InvalidProgram("; ".join(problems), problems=problems)
    return [ProgramPublished(
        program_id=command.program_id, name=command.name, starts_on=command.starts_on,
        ends_on=command.ends_on, basis=command.basis, mode=command.mode, tiers=list(command.tiers),
        eligibility=command.eligibility, growth=command.growth, timeliness=command.timeliness,
        cap_minor=command.cap_minor, currency=command.currency, published_by=command.published_by,
        rollup=command.rollup, kind=command.kind, coop=command.coop,
    )]


def decide_close(state: ProgramState, program_id: str, closed_by: str) -> list[ProgramClosed]:
    """Closing is allowed at any time and again later: each close is a (true-up) settlement round."""
    if state.definition is None:
        raise ProgramNotFound(f"no program {program_id}")
    _refuse_coop(state.definition)
    return [ProgramClosed(program_id=program_id, closed_by=closed_by)]


def decide_settle(state: ProgramState, program_id: str, through: date, today: date,
                  settled_by: str) -> list[ProgramSettled]:
    """An interim round: ``through`` within the period, not in the future, the program not final."""
    program = state.definition
    if program is None:
        raise ProgramNotFound(f"no program {program_id}")
    _refuse_coop(program)
    if state.status == "final":
        raise ProgramFinal(f"program {program_id} is final: a late source proposes its true-up")
    problems = []
    if through < program.starts_on:
        problems.append(f"through must not be before the period starts ({program.starts_on})")
    if through > program.ends_on:
        problems.append(f"through must not be after the period ends ({program.ends_on})")
    if state.settled_through is not None and through < state.settled_through:
        problems.append(f"through must not be before the last interim's ({state.settled_through})")
    if through > today:
        problems.append(f"through must not be in the future (today is {today})")
    if problems:
        raise InvalidSettlementDate("; ".join(problems), problems=problems)
    return [ProgramSettled(program_id=program_id, through=through, settled_by=settled_by)]


def _refuse_coop(program: ProgramPublished) -> None:
    """A co-op fund pays out through approved claims, never through a settlement round."""
    if program.kind == "coop":
        raise NotCoopProgram(f"program {program.program_id} is a co-op fund: it pays approved claims, "
                             "it is not settled or closed", slug="coop-program-not-settled")
