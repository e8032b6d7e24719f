"""Read models kept from the archived events: one small projector per kind of document.

``PROJECTORS`` is the visible table (event type -> projector). Each projector
locks its document, folds the event with a pure ``evolve`` from ``domain`` and
saves it, in the transaction that archived the event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import credit, partners, rebates
from libs.events.base import DomainEvent
from libs.events.envelope import Envelope
from services.projections.application import documents as d
from services.projections.domain import read_models, receivables
from services.projections.domain import rebates as rebate_rules

Projector = Callable[[AsyncConnection, Envelope, DomainEvent], Awaitable[None]]


async def project_partner(conn: AsyncConnection, envelope: Envelope, event: DomainEvent) -> None:
    partner_id = event.partner_id  # type: ignore[attr-defined]
    doc = read_models.evolve_partner(
        await d.locked(conn, d.PARTNER, partner_id, read_models.blank_partner(partner_id)), event)
    await d.save(conn, d.PARTNER, partner_id, doc, partner_id=partner_id, status=doc["status"])


async def project_order(conn: AsyncConnection, envelope: Envelope, event: DomainEvent) -> None:
    order_id = event.order_id  # type: ignore[attr-defined]
    doc = read_models.evolve_order(
        await d.locked(conn, d.ORDER, order_id, read_models.blank_order(order_id)), event,
        occurred_at=envelope.occurred_at, correlation_id=str(envelope.correlation_id))
    await d.save(conn, d.ORDER, order_id, doc, partner_id=doc["partner_id"], status=doc["status"])


async def project_invoice(conn: AsyncConnection, envelope: Envelope, event: DomainEvent) -> None:
    invoice_id = getattr(event, "invoice_id", None)
    if invoice_id is None:  # an advance reserved for an order settles no invoice yet
        return
    doc = receivables.evolve_invoice(
        await d.locked(conn, d.INVOICE, invoice_id, receivables.blank_invoice(invoice_id)), event,
        event_id=str(envelope.event_id), occurred_on=envelope.occurred.date())
    await d.save(conn, d.INVOICE, invoice_id, doc, partner_id=doc["partner_id"],
                 status=receivables.status_of(doc))


async def project_credit_note(conn: AsyncConnection, envelope: Envelope, event: DomainEvent) -> None:
    assert isinstance(event, credit.CreditNoteIssued)
    body = event.payload()
    await d.save(conn, d.CREDIT_NOTE, event.credit_note_id, body, partner_id=event.partner_id,
                 status=event.source_kind)


async def project_payment(conn: AsyncConnection, envelope: Envelope, event: DomainEvent) -> None:
    assert isinstance(event, credit.PaymentReceived)
    await d.save(conn, d.PAYMENT, event.payment_id, event.payload(), partner_id=event.partner_id)


async def project_accrual(conn: AsyncConnection, envelope: Envelope, event: DomainEvent) -> None:
    assert isinstance(event, rebates.RebateAccrued)
    doc_id = rebate_rules.accrual_id(event.program_id, event.partner_id)
    blank = rebate_rules.blank_accrual(event.program_id, event.partner_id)
    doc = rebate_rules.evolve_accrual(await d.locked(conn, d.ACCRUAL, doc_id, blank), event,
                                      stamp=[envelope.stream_version, envelope.occurred_at])
    await d.save(conn, d.ACCRUAL, doc_id, doc, partner_id=event.partner_id)


async def project_settlement(conn: AsyncConnection, envelope: Envelope, event: DomainEvent) -> None:
    settlement_id = event.settlement_id  # type: ignore[attr-defined]
    doc = rebate_rules.evolve_settlement(
        await d.locked(conn, d.SETTLEMENT, settlement_id,
                       rebate_rules.blank_settlement(settlement_id)), event)
    await d.save(conn, d.SETTLEMENT, settlement_id, doc, partner_id=doc["partner_id"],
                 status=doc["status"])


async def project_program(conn: AsyncConnection, envelope: Envelope, event: DomainEvent) -> None:
    assert isinstance(event, rebates.ProgramPublished)
    await d.save(conn, d.PROGRAM, event.program_id, rebate_rules.program_doc(event))


PROJECTORS: Mapping[str, Projector] = {
    **{cls.TYPE: project_partner for cls in (
        partners.PartnerRegistered, partners.AgreementSigned, partners.TrialEnded,
        partners.PartnerSuspended, partners.PartnerReinstated, partners.PartnerTerminated,
        partners.PartnerTierChanged)},
    **dict.fromkeys(read_models.ORDER_STATUS_AFTER, project_order),
    credit.FundsReviewPassed.TYPE: project_order,
    **{cls.TYPE: project_invoice for cls in (
        credit.InvoiceIssued, credit.PaymentApplied, credit.AdvanceApplied, credit.CreditNoteApplied,
        credit.InvoicePaid, credit.InvoiceWrittenOff)},
    credit.CreditNoteIssued.TYPE: project_credit_note,
    credit.PaymentReceived.TYPE: project_payment,
    rebates.RebateAccrued.TYPE: project_accrual,
    rebates.SettlementProposed.TYPE: project_settlement,
    rebates.SettlementApproved.TYPE: project_settlement,
    rebates.ProgramPublished.TYPE: project_program,
}
"""Event type -> the projector that folds it into a read model."""


async def project(conn: AsyncConnection, envelope: Envelope, event: DomainEvent) -> None:
    """Fold one (newly archived) event into the read models it changes."""
    projector = PROJECTORS.get(envelope.event_type)
    if projector is not None:
        await projector(conn, envelope, event)
