"""Finance's and partners' commands on an account; each runs in one transaction.

A command locks and loads the account, decides, appends at the loaded version
and rewrites the documents; the callers run it again on ``ConcurrencyError``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import credit as ev
from libs.events.base import DomainEvent, EventMetadata, format_timestamp, utc_now
from libs.events.codec import canonical_json
from libs.runtime import documents
from libs.runtime.auth import Principal
from libs.runtime.host import ServiceContext
from libs.runtime.ids import new_id
from libs.store.schema import documents as documents_table
from libs.store.sql import insert_ignoring_duplicates
from services.credit.application import accounts, copies
from services.credit.application.queries import account_body, closing_balance
from services.credit.application.read_models import INVOICE, PAYMENT, REVIEW
from services.credit.domain.errors import DuplicateBankRef, InvoiceNotFound, OrderNotFound, StatementMismatch
from services.credit.domain.funds import decide_reject, decide_release, decide_terms
from services.credit.domain.invoicing import decide_write_off
from services.credit.domain.receipts import decide_payment

BANK_REF = "bank-ref"


def _meta(principal: Principal) -> EventMetadata:
    return EventMetadata(actor=principal.actor)


async def change_terms(conn: AsyncConnection, ctx: ServiceContext, principal: Principal, partner_id: str,
                       kind: str, credit_limit_minor: int | None, term_days: int | None) -> dict[str, Any]:
    """Change a partner's terms; held and awaiting orders are re-evaluated on the new terms."""
    loaded = await accounts.open_account(conn, ctx, partner_id)
    decided = decide_terms(loaded.state, kind, credit_limit_minor, term_days, ctx.today(), loaded.cancelled)
    state = await accounts.save(conn, ctx, loaded, decided, _meta(principal))
    return account_body(state, ctx.today(), loaded.cancelled)


async def decide_hold(conn: AsyncConnection, ctx: ServiceContext, principal: Principal, order_id: str,
                      reason: str, release: bool) -> dict[str, Any]:
    """Release (passes funds review, even over the limit) or reject a held or awaiting order."""
    order = await copies.order(conn, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    loaded = await accounts.open_account(conn, ctx, order["partner_id"])
    decide = decide_release if release else decide_reject
    decided = decide(loaded.state, order_id, reason, principal.actor, loaded.cancelled)
    await accounts.save(conn, ctx, loaded, decided, _meta(principal))
    review = await documents.get(conn, REVIEW, order_id)
    assert review is not None
    return review


async def record_payment(conn: AsyncConnection, ctx: ServiceContext, principal: Principal, *,
                         partner_id: str, amount_minor: int, currency: str | None, bank_ref: str,
                         received_on: date, allocations: list[tuple[str, int]] | None) -> dict[str, Any]:
    """Record a bank receipt (its ``bank_ref`` unique across all partners) and apply it."""
    if await documents.get(conn, BANK_REF, bank_ref) is not None:
        raise DuplicateBankRef(bank_ref)
    loaded = await accounts.open_account(conn, ctx, partner_id)
    payment_id = new_id("pay")
    decided = decide_payment(
        loaded.state, payment_id=payment_id, amount=amount_minor, currency=currency or loaded.state.currency,
        bank_ref=bank_ref, received_on=received_on, allocations=allocations, today=ctx.today(),
        cancelled=loaded.cancelled)
    state = await accounts.save(conn, ctx, loaded, decided, _meta(principal))
    claimed = await insert_ignoring_duplicates(conn, documents_table, {
        "kind": BANK_REF, "id": bank_ref, "partner_id": partner_id, "status": None, "version": 0,
        "body": canonical_json({"bank_ref": bank_ref, "payment_id": payment_id}).decode("utf-8"),
        "updated_at": format_timestamp(utc_now())})
    if not claimed:  # a concurrent payment took the reference first; this transaction rolls back
        raise DuplicateBankRef(bank_ref)
    payment = await documents.get(conn, PAYMENT, payment_id)
    assert payment is not None
    return {**payment, "released_orders": _released(decided),
            "account": account_body(state, ctx.today(), loaded.cancelled)}


def _released(decided: list[DomainEvent]) -> list[str]:
    return [e.order_id for e in decided if isinstance(e, ev.FundsReviewPassed)]


async def write_off(conn: AsyncConnection, ctx: ServiceContext, principal: Principal, invoice_id: str,
                    amount_minor: int, reason: str) -> dict[str, Any]:
    """Write off (part of) an open invoice's open amount, with a reason."""
    invoice = await documents.get(conn, INVOICE, invoice_id)
    if invoice is None:
        raise InvoiceNotFound(invoice_id)
    loaded = await accounts.open_account(conn, ctx, invoice["partner_id"])
    decided = decide_write_off(loaded.state, invoice_id, amount_minor, reason, principal.actor, ctx.today(),
                               loaded.cancelled)
    await accounts.save(conn, ctx, loaded, decided, _meta(principal))
    written = await documents.get(conn, INVOICE, invoice_id)
    assert written is not None
    return written


async def answer_statement(conn: AsyncConnection, ctx: ServiceContext, principal: Principal, partner_id: str,
                           to: date, *, closing_minor: int | None = None, reason: str | None = None
                           ) -> dict[str, Any]:
    """Confirm (the closing balance at ``to`` must match) or dispute (with a reason) a statement."""
    loaded = await accounts.open_account(conn, ctx, partner_id)
    closing = await closing_balance(conn, ctx, partner_id, to)
    answer: DomainEvent
    if reason is None:
        assert closing_minor is not None
        if closing_minor != closing:
            raise StatementMismatch(closing, closing_minor)
        answer = ev.StatementConfirmed(partner_id=partner_id, to=to, closing_minor=closing,
                                       currency=loaded.state.currency)
    else:
        answer = ev.StatementDisputed(partner_id=partner_id, to=to, reason=reason)
    await accounts.save(conn, ctx, loaded, [answer], _meta(principal))
    return {"partner_id": partner_id, "to": to.isoformat(), "closing_minor": closing,
            "currency": loaded.state.currency, "status": "confirmed" if reason is None else "disputed",
            "reason": reason}
