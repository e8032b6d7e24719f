"""Partner and key rules as given events / when command / then events (pure, no I/O)."""

from __future__ import annotations

from datetime import date
from functools import reduce

import pytest

from libs.events.base import DomainEvent
from libs.events.partners import (
    AgreementSigned,
    KeyIssued,
    KeyRevoked,
    PartnerCategoriesChanged,
    PartnerRegistered,
    PartnerReinstated,
    PartnerSuspended,
    PartnerTerminated,
    PartnerTerritoriesChanged,
    PartnerTierChanged,
    TrialEnded,
)
from libs.events.values import PaymentTerms
from libs.runtime.errors import Conflict, DomainError, NotFound
from services.partners.domain import key, partner
from services.partners.domain.commands import (
    ChangePartner,
    IssueKey,
    RegisterPartner,
    SignAgreement,
)
from services.partners.domain.partner import Partner, evolve

PID = "ptn_1"
CREDIT = PaymentTerms(kind="credit", credit_limit_minor=100_000, term_days=30)
REGISTERED = PartnerRegistered(
    partner_id=PID, name="Acme", legal_id="L1", kind="agent", tier="B", region="north",
    territories=["north"], categories=["pumps"], payment_terms=CREDIT)
TRIAL = AgreementSigned(partner_id=PID, agreement_id="agr_t", kind="trial",
                        starts_on=date(2025, 1, 1), ends_on=date(2025, 3, 31), status_after="trial")
ANNUAL = AgreementSigned(partner_id=PID, agreement_id="agr_a", kind="annual",
                         starts_on=date(2025, 2, 1), ends_on=date(2026, 1, 31), status_after="active")


def given(*events: DomainEvent) -> Partner:
    return reduce(evolve, events, Partner())


def registration(**changes: object) -> RegisterPartner:
    fields: dict[str, object] = dict(
        partner_id=PID, name="Acme", legal_id="L1", kind="agent", tier="B", region="north",
        territories=("north",), categories=("pumps",), payment_terms=CREDIT)
    fields.update(changes)
    return RegisterPartner(**fields)  # type: ignore[arg-type]


# -- registration -------------------------------------------------------------------


def test_registering_makes_an_applied_partner() -> None:
    events = partner.decide_register(Partner(), registration(), legal_id_taken=False,
                                     parent_exists=False)
    assert events == [REGISTERED]
    assert given(*events).status == "applied"


def test_a_legal_id_taken_is_a_conflict() -> None:
    with pytest.raises(Conflict) as caught:
        partner.decide_register(Partner(), registration(), legal_id_taken=True, parent_exists=False)
    assert caught.value.slug == "duplicate-legal-id"


def test_the_parent_must_exist() -> None:
    with pytest.raises(DomainError) as caught:
        partner.decide_register(Partner(), registration(parent_id="ptn_x"), legal_id_taken=False,
                                parent_exists=False)
    assert caught.value.slug == "unknown-parent"
    events = partner.decide_register(Partner(), registration(parent_id="ptn_x"),
                                     legal_id_taken=False, parent_exists=True)
    assert events[0].parent_id == "ptn_x"  # type: ignore[attr-defined]


@pytest.mark.parametrize("terms", [
    PaymentTerms(kind="prepaid", credit_limit_minor=0),
    PaymentTerms(kind="prepaid", term_days=10),
    PaymentTerms(kind="credit", term_days=30),
    PaymentTerms(kind="credit", credit_limit_minor=1000),
    PaymentTerms(kind="credit", credit_limit_minor=-1, term_days=30),
    PaymentTerms(kind="credit", credit_limit_minor=1000, term_days=-1),
])
def test_payment_terms_must_be_consistent(terms: PaymentTerms) -> None:
    with pytest.raises(DomainError) as caught:
        partner.decide_register(Partner(), registration(payment_terms=terms),
                                legal_id_taken=False, parent_exists=False)
    assert caught.value.status == 422 and caught.value.slug == "invalid-payment-terms"


def test_prepaid_and_zero_credit_terms_are_fine() -> None:
    for terms in (PaymentTerms(kind="prepaid"),
                  PaymentTerms(kind="credit", credit_limit_minor=0, term_days=0)):
        assert partner.decide_register(Partner(), registration(payment_terms=terms),
                                       legal_id_taken=False, parent_exists=False)


# -- agreements ---------------------------------------------------------------------


def agreement(kind: str = "trial", starts: date = date(2025, 1, 1),
              ends: date = date(2025, 3, 31)) -> SignAgreement:
    return SignAgreement(agreement_id="agr_t" if kind == "trial" else "agr_a", kind=kind,  # type: ignore[arg-type]
                         starts_on=starts, ends_on=ends)


def test_a_trial_agreement_makes_the_partner_trial() -> None:
    assert partner.decide_sign(given(REGISTERED), PID, agreement()) == [TRIAL]
    state = given(REGISTERED, TRIAL)
    assert state.status == "trial" and state.open_trial is not None


def test_an_annual_agreement_promotes_a_trial_partner() -> None:
    events = partner.decide_sign(given(REGISTERED, TRIAL), PID, agreement(
        "annual", date(2025, 2, 1), date(2026, 1, 31)))
    assert events == [ANNUAL]
    state = given(REGISTERED, TRIAL, ANNUAL)
    assert state.status == "active" and state.open_trial is None
    assert [a.state for a in state.agreements] == ["superseded", "in_force"]


def test_an_agreement_ends_after_it_starts() -> None:
    with pytest.raises(DomainError) as caught:
        partner.decide_sign(given(REGISTERED), PID, agreement(ends=date(2025, 1, 1)))
    assert caught.value.slug == "invalid-agreement-dates"


@pytest.mark.parametrize(("history", "kind", "slug"), [
    ((REGISTERED, PartnerTerminated(partner_id=PID, reason="x")), "annual", "partner-terminated"),
    ((REGISTERED, ANNUAL, PartnerSuspended(partner_id=PID, reason="x")), "annual",
     "partner-suspended"),
    ((REGISTERED, ANNUAL), "trial", "already-active"),
])
def test_who_cannot_sign(history: tuple[DomainEvent, ...], kind: str, slug: str) -> None:
    with pytest.raises(Conflict) as caught:
        partner.decide_sign(given(*history), PID, agreement(kind))
    assert caught.value.slug == slug


def test_an_unknown_partner_is_not_found() -> None:
    with pytest.raises(NotFound):
        partner.decide_sign(Partner(), PID, agreement())
    with pytest.raises(NotFound):
        partner.decide_suspend(Partner(), PID, "x")


# -- lifecycle ----------------------------------------------------------------------


def test_suspend_then_reinstate_returns_to_the_previous_status() -> None:
    for history, before in (((REGISTERED, TRIAL), "trial"), ((REGISTERED, ANNUAL), "active")):
        suspended = partner.decide_suspend(given(*history), PID, "late reports")
        assert suspended == [PartnerSuspended(partner_id=PID, reason="late reports")]
        assert given(*history, *suspended).status == "suspended"
        reinstated = partner.decide_reinstate(given(*history, *suspended), PID)
        assert reinstated == [PartnerReinstated(partner_id=PID, status_after=before)]
        assert given(*history, *suspended, *reinstated).status == before


@pytest.mark.parametrize("history", [
    (REGISTERED,),
    (REGISTERED, ANNUAL, PartnerSuspended(partner_id=PID, reason="x")),
    (REGISTERED, PartnerTerminated(partner_id=PID, reason="x")),
])
def test_only_trial_or_active_partners_are_suspended(history: tuple[DomainEvent, ...]) -> None:
    with pytest.raises(Conflict) as caught:
        partner.decide_suspend(given(*history), PID, "x")
    assert caught.value.slug == "cannot-suspend"


def test_only_suspended_partners_are_reinstated() -> None:
    for history in ((REGISTERED,), (REGISTERED, ANNUAL)):
        with pytest.raises(Conflict) as caught:
            partner.decide_reinstate(given(*history), PID)
        assert caught.value.slug == "not-suspended"


def test_terminate_names_the_agreement_in_force_and_happens_once() -> None:
    events = partner.decide_terminate(given(REGISTERED, TRIAL, ANNUAL), PID, "fraud")
    assert events == [PartnerTerminated(partner_id=PID, reason="fraud", agreement_id="agr_a")]
    state = given(REGISTERED, TRIAL, ANNUAL, *events)
    assert state.status == "terminated" and state.agreement_in_force is None
    assert partner.decide_terminate(given(REGISTERED), PID, "x")[0].agreement_id is None  # type: ignore[attr-defined]
    with pytest.raises(Conflict) as caught:
        partner.decide_terminate(state, PID, "again")
    assert caught.value.slug == "already-terminated"


def test_a_suspended_partner_can_be_terminated() -> None:
    state = given(REGISTERED, ANNUAL, PartnerSuspended(partner_id=PID, reason="x"))
    assert partner.decide_terminate(state, PID, "y")


# -- changes ------------------------------------------------------------------------


def test_each_change_is_its_own_event_and_no_op_changes_append_nothing() -> None:
    state = given(REGISTERED)
    events = partner.decide_change(state, PID, ChangePartner(
        tier="A", territories=("north", "west"), categories=("valves",)))
    assert events == [
        PartnerTierChanged(partner_id=PID, from_tier="B", to_tier="A"),
        PartnerTerritoriesChanged(partner_id=PID, territories=["north", "west"]),
        PartnerCategoriesChanged(partner_id=PID, categories=["valves"]),
    ]
    changed = given(REGISTERED, *events)
    assert (changed.tier, changed.territories, changed.categories) == (
        "A", ("north", "west"), ("valves",))
    assert partner.decide_change(state, PID, ChangePartner(
        tier="B", territories=("north",), categories=("pumps",))) == []
    assert partner.decide_change(state, PID, ChangePartner()) == []


def test_a_terminated_partner_does_not_change() -> None:
    state = given(REGISTERED, PartnerTerminated(partner_id=PID, reason="x"))
    with pytest.raises(Conflict):
        partner.decide_change(state, PID, ChangePartner(tier="A"))


# -- trials end by themselves -------------------------------------------------------


def test_a_trial_ends_the_day_after_its_end_date() -> None:
    state = given(REGISTERED, TRIAL)
    assert partner.decide_end_trial(state, date(2025, 3, 31)) == []
    ended = partner.decide_end_trial(state, date(2025, 4, 1))
    assert ended == [TrialEnded(partner_id=PID, agreement_id="agr_t", ended_on=date(2025, 3, 31),
                                status_after="applied")]
    after = given(REGISTERED, TRIAL, *ended)
    assert after.status == "applied" and after.open_trial is None
    assert partner.decide_end_trial(after, date(2025, 4, 2)) == []


def test_a_promoted_partner_keeps_its_status() -> None:
    assert partner.decide_end_trial(given(REGISTERED, TRIAL, ANNUAL), date(2025, 6, 1)) == []


def test_a_trial_ending_during_a_suspension_leaves_it_suspended() -> None:
    history = (REGISTERED, TRIAL, PartnerSuspended(partner_id=PID, reason="x"))
    ended = partner.decide_end_trial(given(*history), date(2025, 4, 1))
    assert ended[0].status_after == "suspended"  # type: ignore[attr-defined]
    state = given(*history, *ended)
    assert state.status == "suspended"
    assert partner.decide_reinstate(state, PID)[0].status_after == "applied"  # type: ignore[attr-defined]


def test_a_terminated_trial_does_not_end_again() -> None:
    state = given(REGISTERED, TRIAL, PartnerTerminated(partner_id=PID, reason="x"))
    assert partner.decide_end_trial(state, date(2026, 1, 1)) == []


# -- keys ---------------------------------------------------------------------------


def test_keys_are_issued_with_the_right_binding() -> None:
    staff = IssueKey(key_id="k1", role="sales", secret_sha256="a" * 64)
    assert key.decide_issue(staff, partner_exists=False) == [
        KeyIssued(key_id="k1", role="sales", secret_sha256="a" * 64)]
    bound = IssueKey(key_id="k2", role="partner", partner_id=PID, secret_sha256="b" * 64)
    assert key.decide_issue(bound, partner_exists=True)[0].partner_id == PID  # type: ignore[attr-defined]
    for command, exists, slug in (
        (IssueKey(key_id="k", role="partner", secret_sha256="c"), False, "partner-id-required"),
        (IssueKey(key_id="k", role="partner", partner_id="nope", secret_sha256="c"), False,
         "unknown-partner"),
        (IssueKey(key_id="k", role="finance", partner_id=PID, secret_sha256="c"), True,
         "partner-id-not-allowed"),
    ):
        with pytest.raises(DomainError) as caught:
            key.decide_issue(command, partner_exists=exists)
        assert caught.value.slug == slug


def test_a_key_is_revoked_once() -> None:
    issued = key.evolve(key.ApiKey(), KeyIssued(key_id="k1", role="admin", secret_sha256="a"))
    assert key.decide_revoke(issued, "k1") == [KeyRevoked(key_id="k1")]
    revoked = key.evolve(issued, KeyRevoked(key_id="k1"))
    assert key.decide_revoke(revoked, "k1") == []
    with pytest.raises(NotFound):
        key.decide_revoke(key.ApiKey(), "k9")
