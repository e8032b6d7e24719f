"""Payments, invoices, write-offs, credit notes and debit notes."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response

from libs.runtime import documents
from libs.runtime.errors import NotFound
from libs.runtime.idempotency import IdempotentCommand
from libs.runtime.openapi_doc import answers
from libs.runtime.params import Cursor, Limit, PathId, QueryText
from services.credit.api.deps import Ctx, Finance, Reader, Settings
from services.credit.api.schemas import (
    CreditNote,
    CreditNotePage,
    DebitNote,
    DebitNotePage,
    Invoice,
    InvoicePage,
    InvoiceWithWriteOff,
    Payment,
    PaymentBody,
    PaymentPage,
    PaymentRecorded,
    WriteOffBody,
)
from services.credit.application import commands
from services.credit.application.read_models import CREDIT_NOTE, DEBIT_NOTE, INVOICE, PAYMENT
from services.credit.domain.errors import InvoiceNotFound

router = APIRouter(tags=["money"])


async def _owned(ctx: Ctx, principal: Any, kind: str, doc_id: str) -> dict[str, Any] | None:
    async with ctx.db.read() as conn:
        body = await documents.get(conn, kind, doc_id)
    return body if body is not None and principal.sees(body["partner_id"]) else None


@router.post("/v1/payments", status_code=201, response_model=PaymentRecorded)
async def record_payment(body: PaymentBody, _: Finance, command: IdempotentCommand,
                         settings: Settings) -> Response:
    """Record a bank receipt: ``bank_ref`` is unique (409 on a repeat); applied as of ``received_on``
    to open invoices and debit notes oldest first unless ``allocations`` name open invoices (each <=
    its open amount, in total <= the payment); the rest is advance. Held and awaiting orders are
    then re-evaluated in arrival order.

    ``received_on`` may not be after today, before the account opened, or more than
    ``O2C_CREDIT_RECEIPT_BACKDATE_DAYS`` (30) days back: 422 ``bad-received-on``."""
    allocations = ([(a.invoice_id, a.amount_minor) for a in body.allocations]
                   if body.allocations is not None else None)
    return await command.run(lambda unit: commands.record_payment(
        unit, partner_id=body.partner_id, amount_minor=body.amount_minor, currency=body.currency,
        bank_ref=body.bank_ref, received_on=body.received_on, allocations=allocations,
        settings=settings), body)


@router.get("/v1/payments", **answers(PaymentPage))
async def list_payments(principal: Reader, ctx: Ctx, partner_id: QueryText = None, limit: Limit = 50,
                        cursor: Cursor = None) -> dict[str, Any]:
    """Recorded bank receipts by partner; a partner key lists its own only."""
    async with ctx.db.read() as conn:
        return await documents.page(conn, PAYMENT, partner_id=principal.scoped(partner_id), cursor=cursor,
                                    limit=limit)


@router.get("/v1/payments/{payment_id}", **answers(Payment))
async def get_payment(payment_id: PathId, principal: Reader, ctx: Ctx) -> dict[str, Any]:
    """One payment and how it was applied to invoices and debit notes; the rest is advance."""
    payment = await _owned(ctx, principal, PAYMENT, payment_id)
    if payment is None:
        raise NotFound(f"no payment {payment_id!r}", slug="payment-not-found")
    return payment


@router.get("/v1/invoices", **answers(InvoicePage))
async def list_invoices(principal: Reader, ctx: Ctx, partner_id: QueryText = None,
                        status: Literal["open", "paid", "written_off"] | None = None, limit: Limit = 50,
                        cursor: Cursor = None) -> dict[str, Any]:
    """Invoices (one per dispatch) by partner and status: open, paid or written_off."""
    async with ctx.db.read() as conn:
        return await documents.page(conn, INVOICE, partner_id=principal.scoped(partner_id), status=status,
                                    cursor=cursor, limit=limit)


@router.get("/v1/invoices/{invoice_id}", **answers(Invoice))
async def get_invoice(invoice_id: PathId, principal: Reader, ctx: Ctx) -> dict[str, Any]:
    """One invoice: total, paid, written off and open amounts, due date and lines."""
    invoice = await _owned(ctx, principal, INVOICE, invoice_id)
    if invoice is None:
        raise InvoiceNotFound(invoice_id)
    return invoice


@router.post("/v1/invoices/{invoice_id}/write-off", response_model=InvoiceWithWriteOff)
async def write_off(invoice_id: PathId, body: WriteOffBody, _: Finance, command: IdempotentCommand,
                    settings: Settings) -> Response:
    """Write off at most the open amount, with a reason. Up to ``O2C_CREDIT_WRITE_OFF_THRESHOLD_MINOR``
    (100) it applies at once (``write_off.status`` ``applied``); above, it is only ``proposed`` until
    a second finance key approves it (``POST /v1/write-offs/{id}/approve``) or it is rejected.
    Answers the invoice with its ``write_off``."""
    return await command.run(lambda unit: commands.write_off(
        unit, invoice_id, body.amount_minor, body.reason, settings), body)


@router.get("/v1/credit-notes", **answers(CreditNotePage))
async def list_credit_notes(principal: Reader, ctx: Ctx, partner_id: QueryText = None, limit: Limit = 50,
                            cursor: Cursor = None) -> dict[str, Any]:
    """Credit notes from refund returns and rebate payouts; each reduces what the partner owes."""
    async with ctx.db.read() as conn:
        return await documents.page(conn, CREDIT_NOTE, partner_id=principal.scoped(partner_id),
                                    cursor=cursor, limit=limit)


@router.get("/v1/credit-notes/{credit_note_id}", **answers(CreditNote))
async def get_credit_note(credit_note_id: PathId, principal: Reader, ctx: Ctx) -> dict[str, Any]:
    """One credit note (a refund return or a rebate payout) and its lines."""
    note = await _owned(ctx, principal, CREDIT_NOTE, credit_note_id)
    if note is None:
        raise NotFound(f"no credit note {credit_note_id!r}", slug="credit-note-not-found")
    return note


@router.get("/v1/debit-notes", **answers(DebitNotePage))
async def list_debit_notes(principal: Reader, ctx: Ctx, partner_id: QueryText = None,
                           status: Literal["open", "paid"] | None = None, limit: Limit = 50,
                           cursor: Cursor = None) -> dict[str, Any]:
    """Debit notes (approved negative rebate true-ups): owed like invoices, settled oldest first."""
    async with ctx.db.read() as conn:
        return await documents.page(conn, DEBIT_NOTE, partner_id=principal.scoped(partner_id), status=status,
                                    cursor=cursor, limit=limit)


@router.get("/v1/debit-notes/{debit_note_id}", **answers(DebitNote))
async def get_debit_note(debit_note_id: PathId, principal: Reader, ctx: Ctx) -> dict[str, Any]:
    """One debit note (an approved negative rebate true-up): amount, settled and open."""
    note = await _owned(ctx, principal, DEBIT_NOTE, debit_note_id)
    if note is None:
        raise NotFound(f"no debit note {debit_note_id!r}", slug="debit-note-not-found")
    return note
