"""Finance's and partners' commands on an account, each a ``Unit`` of the one command path.

A command locks and loads the account, decides, appends at the loaded version
and rewrites the documents (``unit.save``); the path runs it again on
``ConcurrencyError``. Each answers plain data, the route's response.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from libs.events import credit as ev
from libs.events.base import DomainEvent
from libs.runtime import documents
from libs.runtime.commands import Unit
from services.credit.application import accounts, copies
from services.credit.application.queries import account_body, closing_balance
from services.credit.application.read_models import INVOICE, REVIEW, WRITE_OFF, payment_body, reviewed
from services.credit.domain.account import fold
from services.credit.domain.errors import (
    DuplicateBankRef,
    InvoiceClosed,
    InvoiceNotFound,
    NotOnHold,
    OrderNotFound,
    StatementMismatch,
    WriteOffNotFound,
    WriteOffNotPending,
)
from services.credit.domain.funds import decide_reject, decide_release, decide_terms
from services.credit.domain.receipts import decide_payment
from services.credit.domain.write_offs import (
    decide_write_off,
    decide_write_off_approval,
    decide_write_off_rejection,
)
from services.credit.settings import CreditSettings

BANK_REF = "bank-ref"


async def change_terms(unit: Unit, partner_id: str, kind: str, credit_limit_minor: int | None,
                       term_days: int | None) -> dict[str, Any]:
    """Change a partner's terms; held and awaiting orders are re-evaluated on the new terms."""
    loaded = await accounts.open_account(unit, partner_id)
    decided = decide_terms(loaded.state, kind, credit_limit_minor, term_days, unit.today(), loaded.cancelled)
    saved = await unit.save(loaded, decided)
    return account_body(saved.state, unit.today(), loaded.cancelled)


async def decide_hold(unit: Unit, order_id: str, reason: str, release: bool) -> dict[str, Any]:
    """Release (passes funds review, even over the limit) or reject a held or awaiting order."""
    order = await copies.order(unit, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    loaded = await accounts.open_account(unit, order["partner_id"])
    if order_id not in loaded.state.orders and (closed := await reviewed(unit, order_id)) is not None:
        raise NotOnHold(order_id, "cancelled" if order_id in loaded.cancelled else closed["status"])
    decide = decide_release if release else decide_reject
    decided = decide(loaded.state, order_id, reason, unit.actor, loaded.cancelled)
    await unit.save(loaded, decided)
    review = await documents.get(unit.conn, REVIEW, order_id)
    assert review is not None
    return review


async def record_payment(unit: Unit, *, partner_id: str, amount_minor: int, currency: str | None,
                         bank_ref: str, received_on: date, allocations: list[tuple[str, int]] | None,
                         settings: CreditSettings) -> dict[str, Any]:
    """Record a bank receipt (its ``bank_ref`` unique across all partners) and apply it as of its date."""
    payment_id = unit.new_id("pay")
    # Claimed first: a reference taken already (or by a payment racing this one, which then
    # waits for this transaction) answers 409 before anything is decided; any later refusal
    # rolls the claim back with the rest.
    claim = {"bank_ref": bank_ref, "payment_id": payment_id}
    if not await documents.create(unit.conn, BANK_REF, bank_ref, claim, partner_id=partner_id):
        raise DuplicateBankRef(bank_ref)
    loaded = await accounts.open_account(unit, partner_id)
    decided = decide_payment(
        loaded.state, payment_id=payment_id, amount=amount_minor, currency=currency or loaded.state.currency,
        bank_ref=bank_ref, received_on=received_on, allocations=allocations, today=unit.today(),
        cancelled=loaded.cancelled, window_days=settings.receipt_backdate_days)
    state = (await unit.save(loaded, decided)).state
    receipt = fold(loaded.state, decided).payments[payment_id]  # as its document was just written
    return {**payment_body(partner_id, receipt), "released_orders": _released(decided),
            "account": account_body(state, unit.today(), loaded.cancelled)}


def _released(decided: list[DomainEvent]) -> list[str]:
    return [e.order_id for e in decided if isinstance(e, ev.FundsReviewPassed)]


async def _invoice_and_write_off(unit: Unit, invoice_id: str, write_off_id: str) -> dict[str, Any]:
    written = await documents.get(unit.conn, INVOICE, invoice_id)
    write_off = await documents.get(unit.conn, WRITE_OFF, write_off_id)
    assert written is not None and write_off is not None
    return {**written, "write_off": write_off}


async def write_off(unit: Unit, invoice_id: str, amount_minor: int, reason: str, settings: CreditSettings
                    ) -> dict[str, Any]:
    """Write off (part of) an open invoice's open amount, with a reason: at once up to the residue
    threshold, else proposed for a second finance key. Answers the invoice and the write-off."""
    invoice = await documents.get(unit.conn, INVOICE, invoice_id)
    if invoice is None:
        raise InvoiceNotFound(invoice_id)
    loaded = await accounts.open_account(unit, invoice["partner_id"])
    if invoice_id not in loaded.state.invoices:  # closed: it left the account, its document says how
        raise InvoiceClosed(invoice_id, invoice["status"])
    write_off_id = unit.new_id("wo")
    decided = decide_write_off(loaded.state, invoice_id, amount_minor, reason, unit.actor, unit.today(),
                               loaded.cancelled, write_off_id=write_off_id,
                               threshold=settings.write_off_threshold_minor)
    await unit.save(loaded, decided)
    return await _invoice_and_write_off(unit, invoice_id, write_off_id)


async def decide_proposed_write_off(unit: Unit, write_off_id: str, settings: CreditSettings,
                                    reject_reason: str | None = None) -> dict[str, Any]:
    """Approve (another finance key than the proposer's) or reject (with a reason) a proposed write-off."""
    proposal = await documents.get(unit.conn, WRITE_OFF, write_off_id)
    if proposal is None:
        raise WriteOffNotFound(write_off_id)
    loaded = await accounts.open_account(unit, proposal["partner_id"])
    if write_off_id not in loaded.state.write_offs:  # decided: it left the account
        raise WriteOffNotPending(write_off_id, proposal["status"])
    if reject_reason is None:
        decided = decide_write_off_approval(loaded.state, write_off_id, unit.actor, unit.today(),
                                            loaded.cancelled, threshold=settings.write_off_threshold_minor)
    else:
        decided = decide_write_off_rejection(loaded.state, write_off_id, reject_reason, unit.actor,
                                             unit.today())
    await unit.save(loaded, decided)
    return await _invoice_and_write_off(unit, proposal["invoice_id"], write_off_id)


async def answer_statement(unit: Unit, partner_id: str, to: date, *, closing_minor: int | None = None,
                           reason: str | None = None) -> dict[str, Any]:
    """Confirm (the closing balance at ``to`` must match) or dispute (with a reason) a statement."""
    loaded = await accounts.open_account(unit, partner_id)
    closing = await closing_balance(unit.conn, unit.ctx, partner_id, to)
    answer: DomainEvent
    if reason is None:
        assert closing_minor is not None
        if closing_minor != closing:
            raise StatementMismatch(closing, closing_minor)
        answer = ev.StatementConfirmed(partner_id=partner_id, to=to, closing_minor=closing,
                                       currency=loaded.state.currency)
    else:
        answer = ev.StatementDisputed(partner_id=partner_id, to=to, reason=reason)
    await unit.save(loaded, [answer])
    return {"partner_id": partner_id, "to": to.isoformat(), "closing_minor": closing,
            "currency": loaded.state.currency, "status": "confirmed" if reason is None else "disputed",
            "reason": reason}
