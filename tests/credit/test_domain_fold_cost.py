"""What the cheaper fold and position must keep: ``changed`` is ``dataclasses.replace``, and the
one-pass ``position`` gives the figures of the functions that define them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from libs.events import credit as ev
from services.credit.domain.account import Account, fold_live
from services.credit.domain.parts import OrderReview, changed
from services.credit.domain.position import (
    exposure,
    free_advance,
    open_debits,
    overdue,
    position,
    reserved,
)
from tests.credit.given import TODAY, P, given, held, issued, opened, passed, received


def test_changed_is_replace_and_refuses_a_name_that_is_not_a_field() -> None:
    review = OrderReview("o1", 100, "held", 1, hold_reason="over_limit")
    assert changed(review, status="approved", how="released") == replace(review, status="approved",
                                                                         how="released")
    assert review.status == "held"  # the original is untouched
    state = Account(partner_id=P)
    assert changed(state, advance_minor=5, suspended=True) == replace(state, advance_minor=5, suspended=True)
    with pytest.raises(TypeError):
        changed(review, stauts="approved")


def _books(kind: str) -> list[ev.DomainEvent]:
    old, new = TODAY - timedelta(days=40), TODAY - timedelta(days=2)
    return [
        opened(kind=kind, limit=10_000 if kind == "credit" else 0),
        received("pay-1", 900, on=old),
        passed("o1", 3_000),
        passed("o2", 500, how="prepaid"),
        ev.AdvanceApplied(partner_id=P, order_id="o2", amount_minor=500),
        held("o3", 8_000),
        passed("o4", 700),
        issued("i1", "o1", 1_000, old, old + timedelta(days=30)),
        issued("i2", "o1", 1_200, new, new + timedelta(days=30)),
        ev.PaymentApplied(payment_id="pay-1", invoice_id="i1", partner_id=P, amount_minor=400,
                          applied_on=old),
        ev.DebitNoteIssued(debit_note_id="dn-1", partner_id=P, amount_minor=300, reason="true-up",
                           source_ref="s1", issued_on=old, due_on=old),
        ev.DebitNoteSettled(debit_note_id="dn-1", partner_id=P, amount_minor=100, settled_on=old,
                            by="advance"),
        issued("i3", "o2", 200, new, new),
        ev.AdvanceApplied(partner_id=P, invoice_id="i3", order_id="o2", amount_minor=200, applied_on=new),
        ev.InvoicePaid(invoice_id="i3", partner_id=P, paid_on=new, on_time=True),
    ]


@pytest.mark.parametrize("kind", ["credit", "prepaid"])
@pytest.mark.parametrize("cancelled", [frozenset(), frozenset({"o2", "o4"})])
def test_position_in_one_pass_gives_each_figure_as_defined(kind: str, cancelled: frozenset[str]) -> None:
    for state in (given(*_books(kind)), fold_live(Account(), _books(kind))):
        figures = position(state, TODAY, cancelled)
        assert figures.exposure_minor == exposure(state, cancelled) > 0
        assert figures.reserved_minor == reserved(state, cancelled)
        assert figures.advance_minor == free_advance(state, cancelled)
        assert figures.overdue_minor == overdue(state, TODAY) > 0
        assert figures.open_debit_notes_minor == open_debits(state) == 200
        assert figures.open_invoices_minor == 600 + 1_200
        assert figures.balance_minor == 600 + 1_200 + 200 - state.advance_minor
