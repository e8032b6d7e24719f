"""Given account events / when a money decision / then events: receipt dates, debit notes, write-offs
under maker-checker, and when a residue write-off leaves an invoice paid on time."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from libs.events import credit as ev
from libs.events.base import DomainEvent
from services.credit.domain.account import Account, fold
from services.credit.domain.errors import (
    BadReceiptDate,
    SameApprover,
    WriteOffNotPending,
    WriteOffPending,
    WriteOffStale,
)
from services.credit.domain.position import open_items, position
from services.credit.domain.receipts import decide_credit_note, decide_debit_note, decide_payment
from services.credit.domain.statement import ledger, statement
from services.credit.domain.write_offs import (
    decide_write_off,
    decide_write_off_approval,
    decide_write_off_rejection,
)
from tests.credit.given import TODAY, given, issued, kinds, opened, received

OPENED = TODAY - timedelta(days=40)


def opened_on(day: date = OPENED, term: int = 30) -> ev.AccountOpened:
    return opened(term=term).model_copy(update={"opened_on": day})


def payment(state: Account, amount: int, on: date, window: int = 30) -> list[DomainEvent]:
    return decide_payment(state, payment_id="pay", amount=amount, currency="CNY", bank_ref="b",
                          received_on=on, allocations=None, today=TODAY, window_days=window)


# -- receipt dates --------------------------------------------------------------------------


@pytest.mark.parametrize(("days_back", "window", "accepted"), [
    (-1, 30, False), (0, 30, True), (30, 30, True), (31, 30, False), (39, 45, True), (41, 45, False),
])
def test_a_receipt_is_dated_within_the_window_and_after_the_account_opened(
    days_back: int, window: int, accepted: bool
) -> None:
    state = given(opened_on())
    on = TODAY - timedelta(days=days_back)
    if accepted:
        assert kinds(payment(state, 100, on, window)) == ["PaymentReceived"]
    else:
        with pytest.raises(BadReceiptDate):
            payment(state, 100, on, window)


def test_an_account_opened_before_its_date_was_recorded_has_only_the_window() -> None:
    state = given(opened())
    assert state.opened_on is None
    assert kinds(payment(state, 100, TODAY - timedelta(days=30))) == ["PaymentReceived"]


def test_a_backdated_receipt_pays_each_invoice_as_of_the_later_of_its_date_and_the_issue() -> None:
    state = given(opened_on(term=10), issued("i1", "o1", 300, TODAY - timedelta(20), TODAY - timedelta(10)),
                  issued("i2", "o1", 200, TODAY - timedelta(3), TODAY + timedelta(7)))
    events = payment(state, 500, TODAY - timedelta(12))
    paid = [(e.invoice_id, e.paid_on, e.on_time) for e in events if isinstance(e, ev.InvoicePaid)]
    assert paid == [("i1", TODAY - timedelta(12), True), ("i2", TODAY - timedelta(3), True)]


# -- debit notes ----------------------------------------------------------------------------


def test_a_debit_note_is_owed_like_an_invoice_and_settled_oldest_first() -> None:
    state = given(opened_on(term=30), issued("i1", "o1", 1_000, TODAY, TODAY + timedelta(30)))
    debit = decide_debit_note(state, debit_note_id="dn1", amount=400, reason="true-up", source_ref="s1",
                              issued_on=TODAY - timedelta(1))
    assert kinds(debit) == ["DebitNoteIssued"]
    assert debit[0].due_on == TODAY + timedelta(29)  # type: ignore[attr-defined]
    state = fold(state, debit)
    assert decide_debit_note(state, debit_note_id="dn2", amount=400, reason="again", source_ref="s1",
                             issued_on=TODAY) == []
    figures = position(state, TODAY)
    assert (figures.balance_minor, figures.exposure_minor, figures.open_debit_notes_minor) == (
        1_400, 1_400, 400)
    assert [type(item).__name__ for item in open_items(state)] == ["DebitNote", "Invoice"]  # older first
    events = payment(state, 600, TODAY)
    assert kinds(events) == ["PaymentReceived", "DebitNoteSettled", "PaymentApplied"]
    state = fold(state, events)
    assert (state.debit_notes["dn1"].status, state.debit_notes["dn1"].paid_on) == ("paid", TODAY)
    assert state.payments["pay"].debit_note_applications == (("dn1", 400),)
    assert position(state, TODAY).balance_minor == 800
    lines = ledger([(e, TODAY) for e in [*debit, *events]])
    assert [(x.kind, x.debit_minor, x.credit_minor) for x in statement(lines, OPENED, TODAY).lines] == [
        ("debit_note", 400, 0), ("payment", 0, 600)]


def test_advance_and_a_later_credit_note_settle_a_debit_note() -> None:
    state = given(opened_on(), received("r1", 150))
    debit = decide_debit_note(state, debit_note_id="dn1", amount=400, reason="r", source_ref="s1",
                              issued_on=TODAY)
    assert [(e.TYPE, getattr(e, "by", None), e.amount_minor) for e in debit[1:]] == [  # type: ignore[attr-defined]
        ("DebitNoteSettled", "advance", 150)]
    state = fold(state, debit)
    note = decide_credit_note(state, credit_note_id="cn1", amount=1_000, reason="payout",
                              source_kind="rebate",
                              source_ref="s2", issued_on=TODAY, today=TODAY)
    settled = [e for e in note if isinstance(e, ev.DebitNoteSettled)]
    assert [(e.by, e.ref, e.amount_minor) for e in settled] == [("credit_note", "cn1", 250)]
    assert position(fold(state, note), TODAY).advance_minor == 750


# -- write-offs -----------------------------------------------------------------------------


def test_above_the_threshold_a_write_off_is_proposed_and_another_key_approves_it() -> None:
    state = given(opened_on(), issued("i1", "o1", 300_000, TODAY, TODAY + timedelta(30)))
    proposed = decide_write_off(state, "i1", 300_000, "gone", "finance:k1", TODAY, write_off_id="w1",
                                threshold=100)
    assert kinds(proposed) == ["WriteOffProposed"]
    state = fold(state, proposed)
    assert position(state, TODAY).balance_minor == 300_000
    with pytest.raises(WriteOffPending):
        decide_write_off(state, "i1", 200, "again", "finance:k2", TODAY, write_off_id="w2", threshold=100)
    with pytest.raises(SameApprover):
        decide_write_off_approval(state, "w1", "finance:k1", TODAY, threshold=100)
    approved = decide_write_off_approval(state, "w1", "finance:k2", TODAY, threshold=100)
    assert kinds(approved) == ["WriteOffApproved", "InvoiceWrittenOff"]
    state = fold(state, approved)
    invoice = state.invoices["i1"]
    assert (invoice.status, invoice.on_time, state.write_offs["w1"].status) == (
        "written_off", None, "approved")
    with pytest.raises(WriteOffNotPending):
        decide_write_off_rejection(state, "w1", "late", "finance:k3", TODAY)


def test_an_approval_needs_the_amount_still_open() -> None:
    state = given(opened_on(), issued("i1", "o1", 1_000, TODAY, TODAY + timedelta(30)))
    state = fold(state, decide_write_off(state, "i1", 500, "x", "k1", TODAY, write_off_id="w1",
                                         threshold=100))
    state = fold(state, payment(state, 800, TODAY))
    with pytest.raises(WriteOffStale):
        decide_write_off_approval(state, "w1", "k2", TODAY, threshold=100)


@pytest.mark.parametrize(("paid_days_ago", "residue", "threshold", "expected"), [
    (15, 3, 100, ("paid", TODAY - timedelta(15), True)),  # paid before the due date, residue later
    (5, 3, 100, ("paid", TODAY - timedelta(5), False)),  # paid after the due date
    (15, 100, 100, ("paid", TODAY - timedelta(15), True)),  # the threshold itself is a residue
    (15, 3, 2, ("written_off", None, None)),  # more than a residue: not paid
])
def test_a_residue_write_off_leaves_the_invoice_paid_when_its_money_came(
    paid_days_ago: int, residue: int, threshold: int, expected: tuple[object, ...]
) -> None:
    state = given(opened_on(), issued("i1", "o1", 10_000, TODAY - timedelta(40), TODAY - timedelta(10)))
    state = fold(state, payment(state, 10_000 - residue, TODAY - timedelta(paid_days_ago)))
    decided = decide_write_off(state, "i1", residue, "short", "k1", TODAY, write_off_id="w",
                               threshold=threshold)
    if kinds(decided) == ["WriteOffProposed"]:  # more than the threshold: a second key approves it
        state = fold(state, decided)
        decided = decide_write_off_approval(state, "w", "k2", TODAY, threshold=threshold)
    state = fold(state, decided)
    invoice = state.invoices["i1"]
    assert (invoice.status, invoice.paid_on, invoice.on_time, invoice.open_minor) == (*expected, 0)
