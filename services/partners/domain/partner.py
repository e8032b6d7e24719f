"""The partner aggregate: its record, agreements and lifecycle.

Lifecycle: ``applied`` → ``trial`` (a trial agreement with a fixed end date;
it ends by itself unless the partner is promoted by an annual agreement) →
``active`` → ``suspended`` (remediation; reinstated to the status it had) →
``terminated`` (for good). Only ``trial`` and ``active`` partners can order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from libs.events.base import DomainEvent
from libs.events.partners import (
    AgreementSigned,
    PartnerCategoriesChanged,
    PartnerParentChanged,
    PartnerRegistered,
    PartnerReinstated,
    PartnerSuspended,
    PartnerTerminated,
    PartnerTerritoriesChanged,
    PartnerTierChanged,
    TrialEnded,
)
from libs.events.values import DEFAULT_CURRENCY, PaymentTerms
from services.partners.domain.commands import ChangeParent, ChangePartner, RegisterPartner, SignAgreement
from services.partners.domain.errors import (
    DuplicateLegalId,
    InvalidField,
    PartnerNotFound,
    TransitionRefused,
)

IN_FORCE, ENDED, SUPERSEDED, TERMINATED = "in_force", "ended", "superseded", "terminated"


@dataclass(frozen=True)
class Agreement:
    id: str
    kind: str
    starts_on: date
    ends_on: date
    annual_target_minor: int | None
    currency: str
    state: str = IN_FORCE


@dataclass(frozen=True)
class Partner:
    id: str = ""
    name: str = ""
    legal_id: str = ""
    kind: str = ""
    tier: str = ""
    region: str = ""
    territories: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    parent_id: str | None = None
    #: From when ``parent_id`` is in effect (``None``: since registration).
    parent_since: date | None = None
    payment_terms: PaymentTerms | None = None
    currency: str = DEFAULT_CURRENCY
    status: str = ""
    status_before_suspension: str | None = None
    agreements: tuple[Agreement, ...] = ()
    suspension_reason: str | None = None
    termination_reason: str | None = None

    @property
    def exists(self) -> bool:
        return bool(self.status)

    @property
    def open_trial(self) -> Agreement | None:
        """The trial agreement still running (not ended, superseded or terminated)."""
        return next((a for a in self.agreements if a.kind == "trial" and a.state == IN_FORCE), None)

    @property
    def agreement_in_force(self) -> Agreement | None:
        """The most recently signed agreement that is still in force."""
        return next((a for a in reversed(self.agreements) if a.state == IN_FORCE), None)


# -- evolve ------------------------------------------------------------------------


def _set_agreements(state: Partner, state_of: dict[str, str]) -> tuple[Agreement, ...]:
    return tuple(replace(a, state=state_of.get(a.id, a.state)) for a in state.agreements)


def evolve(state: Partner, event: DomainEvent) -> Partner:
    """Apply one event; pure and total (unknown events change nothing)."""
    match event:
        case PartnerRegistered():
            return Partner(
                id=event.partner_id, name=event.name, legal_id=event.legal_id, kind=event.kind,
                tier=event.tier, region=event.region, territories=tuple(event.territories),
                categories=tuple(event.categories), parent_id=event.parent_id,
                payment_terms=event.payment_terms, currency=event.currency, status="applied")
        case AgreementSigned():
            # A new agreement supersedes the trial still running (promotion or a new trial).
            trial = state.open_trial
            agreements = _set_agreements(state, {trial.id: SUPERSEDED} if trial else {})
            signed = Agreement(event.agreement_id, event.kind, event.starts_on, event.ends_on,
                               event.annual_target_minor, event.currency)
            return replace(state, status=event.status_after, agreements=(*agreements, signed))
        case TrialEnded():
            agreements = _set_agreements(state, {event.agreement_id: ENDED})
            if event.status_after == "suspended":  # ended during a suspension
                return replace(state, agreements=agreements, status_before_suspension="applied")
            return replace(state, agreements=agreements, status=event.status_after)
        case PartnerSuspended():
            return replace(state, status="suspended", status_before_suspension=state.status,
                           suspension_reason=event.reason)
        case PartnerReinstated():
            return replace(state, status=event.status_after, status_before_suspension=None,
                           suspension_reason=None)
        case PartnerTerminated():
            agreements = _set_agreements(
                state, {a.id: TERMINATED for a in state.agreements if a.state == IN_FORCE})
            return replace(state, status="terminated", agreements=agreements,
                           status_before_suspension=None, termination_reason=event.reason)
        case PartnerTierChanged():
            return replace(state, tier=event.to_tier)
        case PartnerTerritoriesChanged():
            return replace(state, territories=tuple(event.territories))
        case PartnerCategoriesChanged():
            return replace(state, categories=tuple(event.categories))
        case PartnerParentChanged():
            return replace(state, parent_id=event.to_parent_id, parent_since=event.effective_from)
    return state


# -- decide ------------------------------------------------------------------------


def check_payment_terms(terms: PaymentTerms) -> None:
    """Prepaid terms carry neither a credit limit nor a term; credit terms need both, >= 0."""
    if terms.kind == "prepaid":
        for name in ("credit_limit_minor", "term_days"):
            if getattr(terms, name) is not None:
                raise InvalidField(f"payment_terms.{name}", "prepaid terms carry no " + name,
                                   slug="invalid-payment-terms")
        return
    for name in ("credit_limit_minor", "term_days"):
        value = getattr(terms, name)
        if value is None or value < 0:
            raise InvalidField(f"payment_terms.{name}", "credit terms need a value >= 0",
                               slug="invalid-payment-terms")


def decide_register(
    state: Partner, command: RegisterPartner, *, legal_id_taken: bool, parent_exists: bool
) -> list[DomainEvent]:
    """Register a partner as ``applied``: its legal id is unique and its parent must exist."""
    if state.exists:
        raise DuplicateLegalId(command.legal_id)  # same id twice: only a replayed request
    if legal_id_taken:
        raise DuplicateLegalId(command.legal_id)
    if command.parent_id is not None and not parent_exists:
        raise InvalidField("parent_id", f"no partner {command.parent_id!r}", slug="unknown-parent")
    check_payment_terms(command.payment_terms)
    return [PartnerRegistered(
        partner_id=command.partner_id, name=command.name, legal_id=command.legal_id,
        kind=command.kind, tier=command.tier, region=command.region,
        territories=list(command.territories), categories=list(command.categories),
        parent_id=command.parent_id, payment_terms=command.payment_terms,
        currency=command.currency)]


def _require(state: Partner, partner_id: str) -> None:
    if not state.exists:
        raise PartnerNotFound(partner_id)


def _refuse_if_terminated(state: Partner, what: str) -> None:
    if state.status == "terminated":
        raise TransitionRefused(f"a terminated partner cannot {what}",
                                slug="partner-terminated", status=state.status)


def decide_sign(state: Partner, partner_id: str, command: SignAgreement) -> list[DomainEvent]:
    """Sign an agreement: a trial makes the partner ``trial``, an annual one ``active``.

    The agreement ends after it starts. Terminated and suspended partners cannot
    sign (a suspension is lifted by reinstating first); an ``active`` partner
    cannot go back to a trial. An annual agreement signed during a trial
    promotes the partner: the trial then no longer ends by itself.
    """
    _require(state, partner_id)
    _refuse_if_terminated(state, "sign an agreement")
    if state.status == "suspended":
        raise TransitionRefused("reinstate the suspended partner before it signs",
                                slug="partner-suspended", status=state.status)
    if command.kind == "trial" and state.status == "active":
        raise TransitionRefused("an active partner cannot sign a trial agreement",
                                slug="already-active", status=state.status)
    if command.ends_on <= command.starts_on:
        raise InvalidField("ends_on", "must be after starts_on", slug="invalid-agreement-dates")
    if command.annual_target_minor is not None and command.annual_target_minor < 0:
        raise InvalidField("annual_target_minor", "must be >= 0", slug="invalid-agreement")
    return [AgreementSigned(
        partner_id=partner_id, agreement_id=command.agreement_id, kind=command.kind,
        starts_on=command.starts_on, ends_on=command.ends_on,
        annual_target_minor=command.annual_target_minor, currency=state.currency,
        status_after="trial" if command.kind == "trial" else "active")]


def decide_suspend(state: Partner, partner_id: str, reason: str) -> list[DomainEvent]:
    """Only a ``trial`` or ``active`` partner can be suspended."""
    _require(state, partner_id)
    if state.status not in ("trial", "active"):
        raise TransitionRefused(f"a partner in status {state.status!r} cannot be suspended",
                                slug="cannot-suspend", status=state.status)
    return [PartnerSuspended(partner_id=partner_id, reason=reason)]


def decide_reinstate(state: Partner, partner_id: str) -> list[DomainEvent]:
    """Only a suspended partner is reinstated, back to the status it had before."""
    _require(state, partner_id)
    if state.status != "suspended":
        raise TransitionRefused(f"a partner in status {state.status!r} is not suspended",
                                slug="not-suspended", status=state.status)
    back_to = state.status_before_suspension or "applied"
    return [PartnerReinstated(partner_id=partner_id, status_after=back_to)]


def decide_terminate(state: Partner, partner_id: str, reason: str) -> list[DomainEvent]:
    """Any partner not yet terminated can be terminated, with its agreement in force."""
    _require(state, partner_id)
    if state.status == "terminated":
        raise TransitionRefused("the partner is already terminated",
                                slug="already-terminated", status=state.status)
    in_force = state.agreement_in_force
    return [PartnerTerminated(partner_id=partner_id, reason=reason,
                              agreement_id=in_force.id if in_force else None)]


def decide_parent(state: Partner, partner_id: str, change: ChangeParent, *, today: date,
                  parent: Partner | None) -> list[DomainEvent]:
    """A partner moves under another parent (or none) from a date on, never backdated.

    ``effective_from`` is today or later, and not before the last change's: sales
    already dated (and so maybe settled) stay with the parent in effect on their
    date. The new parent exists, is not the partner itself and is not one of its
    own sub-dealers (no cycle of two). The same parent appends nothing.
    """
    if change.parent_id == state.parent_id:
        return []
    if change.effective_from < today:
        raise InvalidField("effective_from", f"must not be before today ({today}): a parent change "
                           "never rewrites past sales", slug="invalid-effective-date")
    if state.parent_since is not None and change.effective_from < state.parent_since:
        raise InvalidField("effective_from", f"must not be before the last parent change "
                           f"({state.parent_since})", slug="invalid-effective-date")
    if change.parent_id is not None:
        if change.parent_id == partner_id:
            raise InvalidField("parent_id", "a partner cannot be its own parent", slug="invalid-parent")
        if parent is None or not parent.exists:
            raise InvalidField("parent_id", f"no partner {change.parent_id!r}", slug="unknown-parent")
        if parent.parent_id == partner_id:
            raise InvalidField("parent_id", f"{change.parent_id} is a sub-dealer of {partner_id}",
                               slug="invalid-parent")
    return [PartnerParentChanged(partner_id=partner_id, from_parent_id=state.parent_id,
                                 to_parent_id=change.parent_id, effective_from=change.effective_from)]


def decide_change(state: Partner, partner_id: str, command: ChangePartner, *, today: date | None = None,
                  parent: Partner | None = None) -> list[DomainEvent]:
    """Each real change is its own event; a value equal to the current one appends nothing.

    Territories and categories compare as sets. A terminated partner cannot change.
    A parent change follows ``decide_parent`` (``parent``: the new parent's state).
    """
    _require(state, partner_id)
    events: list[DomainEvent] = []
    if command.tier is not None and command.tier != state.tier:
        events.append(PartnerTierChanged(partner_id=partner_id, from_tier=state.tier,
                                         to_tier=command.tier))
    if command.territories is not None and set(command.territories) != set(state.territories):
        events.append(PartnerTerritoriesChanged(partner_id=partner_id,
                                                territories=list(command.territories)))
    if command.categories is not None and set(command.categories) != set(state.categories):
        events.append(PartnerCategoriesChanged(partner_id=partner_id,
                                               categories=list(command.categories)))
    if command.parent is not None:
        assert today is not None
        events += decide_parent(state, partner_id, command.parent, today=today, parent=parent)
    if events:
        _refuse_if_terminated(state, "change")
    return events


def decide_end_trial(state: Partner, today: date) -> list[DomainEvent]:
    """A trial still running whose ``ends_on`` is before ``today`` ends by itself.

    The partner goes back to ``applied``; if it is suspended meanwhile it stays
    suspended and would be reinstated to ``applied``. A partner promoted by an
    annual agreement has no running trial, so nothing happens.
    """
    trial = state.open_trial
    if trial is None or not trial.ends_on < today:
        return []
    if state.status == "trial":
        after = "applied"
    elif state.status == "suspended":
        after = "suspended"
    else:
        return []
    return [TrialEnded(partner_id=state.id, agreement_id=trial.id, ended_on=trial.ends_on,
                       status_after=after)]
