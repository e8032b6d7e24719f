"""Given account events / when a money decision / then events: invoices, payments, credit notes,
write-offs, statements."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from libs.events import credit as ev
from libs.events.base import DomainEvent
from services.credit.domain.account import Account, fold
from services.credit.domain.errors import BadAllocation, BadAmount, CurrencyMismatch, InvoiceClosed
from services.credit.domain.invoicing import decide_invoice
from services.credit.domain.position import position
from services.credit.domain.receipts import decide_credit_note, decide_payment
from services.credit.domain.statement import ledger, statement
from services.credit.domain.write_offs import decide_write_off
from tests.credit.given import TODAY, P, given, held, issued, kinds, line, opened, passed, received

# -- invoices -------------------------------------------------------------------------------


def test_invoice_amount_and_due_date() -> None:
    state = given(opened(term=45), passed("o1", 1_000))
    [invoice] = decide_invoice(
        state,
        invoice_id="i1",
        order_id="o1",
        dispatch_id="d1",
        lines=[line(3, 100), line(2, 50, "T")],
        issued_on=TODAY,
        region="east",
        tier="A",
        today=TODAY,
    )
    assert isinstance(invoice, ev.InvoiceIssued)
    assert (invoice.total_minor, invoice.issued_on, invoice.due_on) == (400, TODAY, TODAY + timedelta(45))
    again = fold(state, [invoice])
    assert (
        decide_invoice(
            again,
            invoice_id="i2",
            order_id="o1",
            dispatch_id="d1",
            lines=[line(1, 1)],
            issued_on=TODAY,
            region="east",
            tier="A",
            today=TODAY,
        )
        == []
    )


def test_prepaid_invoices_are_settled_from_the_reservation_and_the_rest_is_freed() -> None:
    state = given(
        opened("prepaid", 0, 0),
        received("p1", 1_000),
        passed("o1", 700, "prepaid"),
        ev.AdvanceApplied(partner_id=P, order_id="o1", amount_minor=700),
    )
    first = decide_invoice(
        state,
        invoice_id="i1",
        order_id="o1",
        dispatch_id="d1",
        lines=[line(4, 100)],
        issued_on=TODAY,
        region="east",
        tier="A",
        today=TODAY,
    )
    assert first[1:] == [
        ev.AdvanceApplied(partner_id=P, invoice_id="i1", order_id="o1", amount_minor=400, applied_on=TODAY),
        ev.InvoicePaid(invoice_id="i1", partner_id=P, paid_on=TODAY, on_time=True),
    ]
    assert first[0].due_on == TODAY  # type: ignore[attr-defined]
    state = fold(state, first)
    assert (position(state, TODAY).reserved_minor, position(state, TODAY).advance_minor) == (300, 300)
    state = fold(
        state,
        decide_invoice(
            state,
            invoice_id="i2",
            order_id="o1",
            dispatch_id="d2",
            lines=[line(3, 100)],
            issued_on=TODAY,
            region="east",
            tier="A",
            today=TODAY,
        ),
    )
    figures = position(state, TODAY)
    assert (figures.reserved_minor, figures.advance_minor, figures.balance_minor) == (0, 300, -300)
    assert {i.status for i in state.invoices.values()} == {"paid"}


def test_write_off_is_bounded_by_the_open_amount() -> None:
    state = given(opened(), passed("o1", 100), issued("i1", "o1", 100, TODAY, TODAY))
    with pytest.raises(BadAmount):
        decide_write_off(state, "i1", 101, "too much", "finance:k", TODAY)
    state = fold(state, decide_write_off(state, "i1", 40, "residue", "finance:k", TODAY))
    assert (state.invoices["i1"].open_minor, state.invoices["i1"].status) == (60, "open")
    state = fold(state, decide_write_off(state, "i1", 60, "residue", "finance:k", TODAY))
    assert state.invoices["i1"].status == "written_off"
    with pytest.raises(InvoiceClosed):
        decide_write_off(state, "i1", 1, "again", "finance:k", TODAY)


# -- payments and credit notes --------------------------------------------------------------


def two_invoices() -> Account:
    return given(
        opened(),
        passed("o1", 500),
        issued("i2", "o1", 300, TODAY - timedelta(5), TODAY + timedelta(1)),
        issued("i1", "o1", 200, TODAY - timedelta(2), TODAY + timedelta(20)),
    )


def test_payment_is_applied_oldest_invoice_first_and_the_rest_is_advance() -> None:
    events = decide_payment(
        two_invoices(),
        payment_id="p1",
        amount=400,
        currency="CNY",
        bank_ref="B1",
        received_on=TODAY + timedelta(3),
        allocations=None,
        today=TODAY + timedelta(3),
    )
    assert kinds(events) == ["PaymentReceived", "PaymentApplied", "InvoicePaid", "PaymentApplied"]
    assert [(e.invoice_id, e.amount_minor) for e in events if isinstance(e, ev.PaymentApplied)] == [
        ("i2", 300),
        ("i1", 100),
    ]
    assert events[2] == ev.InvoicePaid(
        invoice_id="i2", partner_id=P, paid_on=TODAY + timedelta(3), on_time=False
    )
    state = fold(
        two_invoices(),
        decide_payment(
            two_invoices(),
            payment_id="p1",
            amount=600,
            currency="CNY",
            bank_ref="B1",
            received_on=TODAY,
            allocations=None,
            today=TODAY,
        ),
    )
    assert position(state, TODAY).advance_minor == 100
    assert state.invoices["i1"].on_time is True


def test_explicit_allocations_are_validated_and_applied_as_given() -> None:
    state = two_invoices()
    events = decide_payment(
        state,
        payment_id="p1",
        amount=250,
        currency="CNY",
        bank_ref="B1",
        received_on=TODAY,
        allocations=[("i1", 200)],
        today=TODAY,
    )
    assert [(e.invoice_id, e.amount_minor) for e in events if isinstance(e, ev.PaymentApplied)] == [
        ("i1", 200)
    ]
    assert position(fold(state, events), TODAY).advance_minor == 50
    for bad in ([("nope", 1)], [("i1", 201)], [("i1", 100), ("i1", 50)], [("i1", 200), ("i2", 100)]):
        with pytest.raises(BadAllocation):
            decide_payment(
                state,
                payment_id="p1",
                amount=250,
                currency="CNY",
                bank_ref="B1",
                received_on=TODAY,
                allocations=bad,
                today=TODAY,
            )
    with pytest.raises(CurrencyMismatch):
        decide_payment(
            state,
            payment_id="p1",
            amount=1,
            currency="USD",
            bank_ref="B1",
            received_on=TODAY,
            allocations=None,
            today=TODAY,
        )


def test_payment_releases_held_orders() -> None:
    state = given(
        opened(limit=1_000),
        passed("o1", 1_000),
        issued("i1", "o1", 1_000, TODAY, TODAY + timedelta(9)),
        held("o2", 700),
    )
    events = decide_payment(
        state,
        payment_id="p1",
        amount=700,
        currency="CNY",
        bank_ref="B",
        received_on=TODAY,
        allocations=None,
        today=TODAY,
    )
    assert kinds(events)[-2:] == ["HoldReleased", "FundsReviewPassed"]


def test_a_rebate_credit_note_settles_open_invoices_as_credit_note_applied_not_as_advance() -> None:
    state = given(
        opened(),
        passed("o1", 1_000),
        issued("i1", "o1", 1_000, TODAY - timedelta(5), TODAY + timedelta(25)),
        received("pay1", 300),
        ev.PaymentApplied(
            payment_id="pay1", invoice_id="i1", partner_id=P, amount_minor=300, applied_on=TODAY
        ),
    )
    events = decide_credit_note(
        state,
        credit_note_id="cn1",
        amount=400,
        reason="rebate",
        source_kind="rebate",
        source_ref="stl_1",
        issued_on=TODAY,
        today=TODAY,
    )
    assert kinds(events) == ["CreditNoteIssued", "CreditNoteApplied"]
    assert not any(isinstance(e, ev.AdvanceApplied) for e in events)
    assert events[1] == ev.CreditNoteApplied(
        credit_note_id="cn1", invoice_id="i1", partner_id=P, amount_minor=400, applied_on=TODAY
    )
    after = fold(state, events)
    figures = position(after, TODAY)
    assert (after.invoices["i1"].paid_minor, after.invoices["i1"].open_minor) == (700, 300)
    assert (figures.balance_minor, figures.advance_minor) == (300, 0)
    # paying the rest with a credit note closes the invoice; the remainder stays as advance ...
    events = decide_credit_note(
        after,
        credit_note_id="cn2",
        amount=500,
        reason="refund",
        source_kind="return",
        source_ref="ret_1",
        issued_on=TODAY,
        today=TODAY,
    )
    assert kinds(events) == ["CreditNoteIssued", "CreditNoteApplied", "InvoicePaid"]
    after = fold(after, events)
    assert (after.invoices["i1"].status, position(after, TODAY).balance_minor, after.advance_minor) == (
        "paid",
        -200,
        200,
    )
    # ... and that pooled advance later settles a new invoice as advance (documented simplification)
    later = decide_invoice(
        fold(after, [passed("o2", 150)]),
        invoice_id="i2",
        order_id="o2",
        dispatch_id="d2",
        lines=[line(1, 150)],
        issued_on=TODAY,
        region="east",
        tier="A",
        today=TODAY,
    )
    assert kinds(later) == ["InvoiceIssued", "AdvanceApplied", "InvoicePaid"]


def test_credit_note_is_applied_to_open_invoices_then_kept_as_advance_once_per_source() -> None:
    state = two_invoices()
    events = decide_credit_note(
        state,
        credit_note_id="cn1",
        amount=350,
        reason="rebate",
        source_kind="rebate",
        source_ref="stl_1",
        issued_on=TODAY,
        today=TODAY,
    )
    assert kinds(events) == ["CreditNoteIssued", "CreditNoteApplied", "InvoicePaid", "CreditNoteApplied"]
    state = fold(state, events)
    assert (state.invoices["i2"].status, state.invoices["i1"].open_minor) == ("paid", 150)
    assert (
        decide_credit_note(
            state,
            credit_note_id="cn2",
            amount=350,
            reason="rebate",
            source_kind="rebate",
            source_ref="stl_1",
            issued_on=TODAY,
            today=TODAY,
        )
        == []
    )
    assert (
        decide_credit_note(
            state,
            credit_note_id="cn3",
            amount=0,
            reason="nothing",
            source_kind="rebate",
            source_ref="stl_2",
            issued_on=TODAY,
            today=TODAY,
        )
        == []
    )


# -- statements -----------------------------------------------------------------------------


def test_statement_opening_lines_and_closing() -> None:
    d = date(2026, 2, 1)
    entries: list[tuple[DomainEvent, date]] = [
        (issued("i1", "o1", 1_000, d, d + timedelta(30)), d),
        (received("p1", 300, d + timedelta(10)), d),
        (issued("i2", "o1", 500, d + timedelta(20), d + timedelta(50)), d),
        (
            ev.CreditNoteIssued(
                credit_note_id="cn1",
                partner_id=P,
                amount_minor=50,
                reason="rebate",
                source_kind="rebate",
                source_ref="s",
                issued_on=d + timedelta(30),
            ),
            d,
        ),
        (
            ev.InvoiceWrittenOff(
                invoice_id="i1",
                partner_id=P,
                amount_minor=7,
                reason="residue",
                written_off_by="finance:k",
                written_off_on=d + timedelta(40),
            ),
            d,
        ),
    ]
    lines = ledger(entries)
    march = statement(lines, date(2026, 3, 1), date(2026, 3, 31))
    assert march.opening_minor == 1_000 - 300 + 500
    assert [(x.kind, x.debit_minor, x.credit_minor) for x in march.lines] == [
        ("credit_note", 0, 50),
        ("write_off", 0, 7),
    ]
    assert march.closing_minor == 1_200 - 57
    whole = statement(lines, date(2026, 1, 1), date(2026, 3, 31))
    assert (whole.opening_minor, len(whole.lines), whole.closing_minor) == (0, 5, 1_143)
