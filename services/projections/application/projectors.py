"""Read models kept from the archived events: one small projector per kind of document.

``PROJECTORS`` is the visible table (event type -> projector). A projector
names the one document an event changes (kind, id, blank) and folds the event
into it with a pure ``evolve`` from ``domain``. ``project`` runs it against a
unit of work (``libs.runtime.documents.batch``): the live consumer in the
transaction that archived the event, ``o2c replay`` over a page of the archive
at a time (``keys_of`` says which documents to read for a page, in one go).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from libs.events import credit, partners, rebates
from libs.events.base import DomainEvent
from libs.runtime.documents import Key
from services.projections.application import documents as d
from services.projections.domain import channel, partner_view, read_models, receivables
from services.projections.domain import rebates as rebate_rules

Doc = dict[str, Any]


class Stamp(Protocol):
    """What a fold reads of an event's envelope: the live path passes the ``Envelope``, a
    rebuild the few columns it reads of the archive (``archive.Archived``)."""

    @property
    def event_type(self) -> str: ...

    @property
    def event_id(self) -> uuid.UUID: ...

    @property
    def stream_version(self) -> int: ...

    @property
    def occurred_at(self) -> str: ...

    @property
    def correlation_id(self) -> uuid.UUID: ...


@dataclass(frozen=True)
class Projector:
    """How one kind of document follows the events that change it."""

    kind: str
    doc_id: Callable[[DomainEvent], str | None]
    """The document the event changes (None: it changes none)."""
    fold: Callable[[Doc, Stamp, DomainEvent], Doc]
    """The document after the event (given the blank when it is new)."""
    blank: Callable[[DomainEvent, str], Doc] | None = None
    """A new document; None when each event writes its document whole (nothing is read)."""
    partner_id: Callable[[Doc, DomainEvent], str | None] = lambda doc, event: doc["partner_id"]
    status: Callable[[Doc, DomainEvent], str | None] = lambda doc, event: None


def _partner(doc: Doc, envelope: Stamp, event: DomainEvent) -> Doc:
    return read_models.evolve_partner(doc, event)


def _order(doc: Doc, envelope: Stamp, event: DomainEvent) -> Doc:
    return read_models.evolve_order(doc, event, occurred_at=envelope.occurred_at,
                                    correlation_id=str(envelope.correlation_id))


def _invoice(doc: Doc, envelope: Stamp, event: DomainEvent) -> Doc:
    return receivables.evolve_invoice(doc, event, event_id=str(envelope.event_id),
                                      occurred_on=date.fromisoformat(envelope.occurred_at[:10]))


def _accrual(doc: Doc, envelope: Stamp, event: DomainEvent) -> Doc:
    assert isinstance(event, rebates.RebateAccrued)
    return rebate_rules.evolve_accrual(doc, event, stamp=[envelope.stream_version, envelope.occurred_at])


def _accrual_id(event: DomainEvent) -> str:
    assert isinstance(event, rebates.RebateAccrued)
    return rebate_rules.accrual_id(event.program_id, event.partner_id)


def _accrual_blank(event: DomainEvent, doc_id: str) -> Doc:
    assert isinstance(event, rebates.RebateAccrued)
    return rebate_rules.blank_accrual(event.program_id, event.partner_id)


COOP_EVENTS = (rebates.CoopClaimFiled, rebates.CoopClaimApproved, rebates.CoopClaimRejected,
               rebates.CoopFundExpired)


def _fund_id(event: DomainEvent) -> str:
    assert isinstance(event, COOP_EVENTS)
    return channel.fund_id(event.program_id, event.partner_id)


def _fund_blank(event: DomainEvent, doc_id: str) -> Doc:
    assert isinstance(event, COOP_EVENTS)
    return channel.blank_fund(event.program_id, event.partner_id)


def _program(doc: Doc, envelope: Stamp, event: DomainEvent) -> Doc:
    assert isinstance(event, rebates.ProgramPublished)
    return rebate_rules.program_doc(event)


def _its_payload(doc: Doc, envelope: Stamp, event: DomainEvent) -> Doc:
    return event.payload()


def _named(field: str) -> Callable[[DomainEvent], str | None]:
    return lambda event: getattr(event, field, None)


def _event_partner(doc: Doc, event: DomainEvent) -> str | None:
    return getattr(event, "partner_id", None)


project_partner = Projector(
    d.PARTNER, _named("partner_id"), _partner, lambda event, pid: read_models.blank_partner(pid),
    status=lambda doc, event: doc["status"])
project_order = Projector(
    d.ORDER, _named("order_id"), _order, lambda event, oid: read_models.blank_order(oid),
    status=lambda doc, event: doc["status"])
project_invoice = Projector(  # an advance reserved for an order names no invoice: it settles none yet
    d.INVOICE, _named("invoice_id"), _invoice, lambda event, iid: receivables.blank_invoice(iid),
    status=lambda doc, event: receivables.status_of(doc))
project_debit_note = Projector(
    d.DEBIT_NOTE, _named("debit_note_id"), _invoice, lambda event, nid: receivables.blank_invoice(nid),
    status=lambda doc, event: receivables.status_of(doc))
project_credit_note = Projector(
    d.CREDIT_NOTE, _named("credit_note_id"), _its_payload, partner_id=_event_partner,
    status=lambda doc, event: getattr(event, "source_kind", None))
project_payment = Projector(d.PAYMENT, _named("payment_id"), _its_payload, partner_id=_event_partner)
project_accrual = Projector(d.ACCRUAL, _accrual_id, _accrual, _accrual_blank, partner_id=_event_partner)
project_settlement = Projector(
    d.SETTLEMENT, _named("settlement_id"), lambda doc, envelope, event: rebate_rules.evolve_settlement(
        doc, event),
    lambda event, sid: rebate_rules.blank_settlement(sid), status=lambda doc, event: doc["status"])
project_program = Projector(d.PROGRAM, _named("program_id"), _program, partner_id=lambda doc, event: None)
project_coop_fund = Projector(
    d.COOP_FUND, _fund_id, lambda doc, envelope, event: channel.evolve_fund(doc, event), _fund_blank)
project_deal = Projector(
    d.DEAL, _named("deal_id"), lambda doc, envelope, event: partner_view.evolve_deal(doc, event),
    lambda event, deal_id: partner_view.blank_deal(deal_id), status=lambda doc, event: doc["status"])


PROJECTORS: Mapping[str, Projector] = {
    **{cls.TYPE: project_partner for cls in (
        partners.PartnerRegistered, partners.AgreementSigned, partners.TrialEnded,
        partners.PartnerSuspended, partners.PartnerReinstated, partners.PartnerTerminated,
        partners.PartnerTierChanged, partners.PartnerParentChanged)},
    **dict.fromkeys(read_models.ORDER_STATUS_AFTER, project_order),
    credit.FundsReviewPassed.TYPE: project_order,
    **{cls.TYPE: project_invoice for cls in (
        credit.InvoiceIssued, credit.PaymentApplied, credit.AdvanceApplied, credit.CreditNoteApplied,
        credit.InvoicePaid, credit.InvoiceWrittenOff)},
    credit.DebitNoteIssued.TYPE: project_debit_note,
    credit.DebitNoteSettled.TYPE: project_debit_note,
    credit.CreditNoteIssued.TYPE: project_credit_note,
    credit.PaymentReceived.TYPE: project_payment,
    rebates.RebateAccrued.TYPE: project_accrual,
    rebates.SettlementProposed.TYPE: project_settlement,
    rebates.SettlementApproved.TYPE: project_settlement,
    rebates.ProgramPublished.TYPE: project_program,
    **{cls.TYPE: project_coop_fund for cls in COOP_EVENTS},
    **dict.fromkeys(partner_view.DEAL_STATUS_AFTER, project_deal),
}
"""Event type -> the projector that folds it into a read model."""


def keys_of(events: Iterable[DomainEvent]) -> dict[Key, Doc | None]:
    """The documents the events change that their projectors read, with their blanks."""
    wanted: dict[Key, Doc | None] = {}
    for event in events:
        projector = PROJECTORS.get(event.TYPE)
        if projector is None or projector.blank is None:
            continue
        doc_id = projector.doc_id(event)
        if doc_id is not None and (projector.kind, doc_id) not in wanted:
            wanted[(projector.kind, doc_id)] = projector.blank(event, doc_id)
    return wanted


class Work(Protocol):
    """Where a projector reads and writes documents: a ``libs.runtime.documents.Documents``
    unit of work, or an in-memory fold (``application.books``)."""

    async def locked(self, kind: str, doc_id: str, blank: Doc) -> Doc: ...

    def put(self, kind: str, doc_id: str, body: Doc, *, partner_id: str | None = None,
            status: str | None = None) -> None: ...


async def project(docs: Work, envelope: Stamp, event: DomainEvent) -> str | None:
    """Fold one (newly archived) event into the read model it changes; answers the partner
    that document belongs to (an order's status events name no partner, its document does)."""
    projector = PROJECTORS.get(envelope.event_type)
    if projector is None:
        return None
    doc_id = projector.doc_id(event)
    if doc_id is None:
        return None
    if projector.blank is None:
        doc: Doc = {}
    else:
        doc = await docs.locked(projector.kind, doc_id, projector.blank(event, doc_id))
    doc = projector.fold(doc, envelope, event)
    partner_id = projector.partner_id(doc, event)
    docs.put(projector.kind, doc_id, doc, partner_id=partner_id, status=projector.status(doc, event))
    return partner_id
