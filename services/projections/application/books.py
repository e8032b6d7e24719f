"""The books as they stood at the end of a day: what the reports and the partner 360 ``as_of`` read.

Two kinds of facts, each dated the way the business dates it:

- money (invoices, debit notes, payments, credit notes and what settled them):
  the current read models, cut at the business date each fact carries
  (``domain.as_of``), so a backdated receipt counts on its ``received_on`` and
  the figures equal the statement for that day;
- everything else (partner profiles, orders and their status, rebate accruals
  and settlements, agreements, territory violations, payment terms): the
  archived events that occurred by the end of the day, folded in memory by the
  same projectors the live read models use (so a past ``as_of`` shows an
  order as it stood then, not as it stands now).

Reading the archive costs one query over the events of those types (of one
partner when asked for one): fine for reports on demand, not for hot paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import credit, orders, partners
from libs.events.registry import EventRegistry
from services.projections.application import archive
from services.projections.application import documents as d
from services.projections.application.projectors import PROJECTORS, Doc, project
from services.projections.domain.as_of import dated_at, receivables_at

FOLDED_KINDS = (d.PARTNER, d.ORDER, d.ACCRUAL, d.SETTLEMENT)
FOLDED_TYPES = tuple(t for t, projector in PROJECTORS.items() if projector.kind in FOLDED_KINDS)
AGREEMENT = partners.AgreementSigned.TYPE
VIOLATION = orders.TerritoryViolationRecorded.TYPE
TERMS = (credit.AccountOpened.TYPE, credit.TermsChanged.TYPE)


@dataclass
class Books:
    """Everything the reports read, as it stood at the end of ``as_of``."""

    as_of: date
    partners: dict[str, Doc] = field(default_factory=dict)
    orders: list[Doc] = field(default_factory=list)
    accruals: list[Doc] = field(default_factory=list)
    settlements: list[Doc] = field(default_factory=list)
    agreements: list[Doc] = field(default_factory=list)
    """``AgreementSigned`` payloads, in the order they were signed."""
    violations: list[Doc] = field(default_factory=list)
    """``{partner_id, on, region}`` per recorded territory violation."""
    terms: dict[str, Doc] = field(default_factory=dict)
    """Each partner's payment terms in force: ``{kind, credit_limit_minor, term_days, currency}``."""
    invoices: list[Doc] = field(default_factory=list)
    debit_notes: list[Doc] = field(default_factory=list)
    credit_notes: list[Doc] = field(default_factory=list)
    payments: list[Doc] = field(default_factory=list)
    programs: dict[str, Doc] = field(default_factory=dict)

    def by_partner(self) -> dict[str, Books]:
        """The books split per partner, in one pass over each kind of fact."""
        split: dict[str, Books] = {}

        def own(partner_id: str | None) -> Books:
            return split.setdefault(partner_id or "", Books(self.as_of, programs=self.programs))

        for partner_id, profile in self.partners.items():
            own(partner_id).partners[partner_id] = profile
        for partner_id, terms in self.terms.items():
            own(partner_id).terms[partner_id] = terms
        for name in ("orders", "accruals", "settlements", "agreements", "violations", "invoices",
                     "debit_notes", "credit_notes", "payments"):
            for doc in getattr(self, name):
                getattr(own(doc.get("partner_id")), name).append(doc)
        return split


class _InMemory:
    """Documents folded in memory (``projectors.Work``): nothing is written."""

    def __init__(self) -> None:
        self.bodies: dict[tuple[str, str], Doc] = {}

    async def locked(self, kind: str, doc_id: str, blank: Doc) -> Doc:
        return dict(self.bodies.get((kind, doc_id), blank))

    def put(self, kind: str, doc_id: str, body: Doc, *, partner_id: str | None = None,
            status: str | None = None) -> None:
        self.bodies[(kind, doc_id)] = body

    def all_of(self, kind: str) -> list[Doc]:
        return [body for (k, _), body in sorted(self.bodies.items()) if k == kind]


async def _archived(conn: AsyncConnection, types: Sequence[str], before: str,
                    partner_id: str | None) -> Sequence[archive.ArchivedRow]:
    table = archive.archive
    query = select(*archive.ROW).where(table.c.event_type.in_(types), table.c.occurred_at < before)
    if partner_id is not None:
        own_orders = select(table.c.order_id).where(
            table.c.partner_id == partner_id, table.c.event_type == orders.OrderPlaced.TYPE)
        query = query.where(or_(table.c.partner_id == partner_id, table.c.order_id.in_(own_orders)))
    return (await conn.execute(query.order_by(table.c.received_seq))).all()


async def books_at(conn: AsyncConnection, registry: EventRegistry, as_of: date,
                   partner_id: str | None = None) -> Books:
    """The books at the end of ``as_of`` (of one partner when given)."""
    before = (as_of + timedelta(days=1)).isoformat()
    memory = _InMemory()
    books = Books(as_of)
    for row in await _archived(conn, (*FOLDED_TYPES, AGREEMENT, VIOLATION, *TERMS), before, partner_id):
        envelope = archive.envelope_of(row)
        event = registry.decode(envelope)
        match event:
            case partners.AgreementSigned():
                books.agreements.append(event.payload() | {"partner_id": event.partner_id})
            case orders.TerritoryViolationRecorded():
                books.violations.append({"partner_id": event.partner_id, "region": event.region,
                                         "on": envelope.occurred_at[:10]})
            case credit.AccountOpened() | credit.TermsChanged():
                books.terms[event.partner_id] = {
                    "kind": event.kind, "credit_limit_minor": event.credit_limit_minor,
                    "term_days": event.term_days, "currency": event.currency}
        if event.TYPE in FOLDED_TYPES:
            await project(memory, envelope, event)
    books.partners = {p["partner_id"]: p for p in memory.all_of(d.PARTNER)}
    books.orders = [o for o in memory.all_of(d.ORDER) if o["partner_id"] is not None]
    books.accruals = memory.all_of(d.ACCRUAL)
    books.settlements = memory.all_of(d.SETTLEMENT)

    async def money(kind: str) -> list[dict[str, Any]]:
        return await d.all_of(conn, kind, partner_id=partner_id)

    books.invoices = receivables_at(await money(d.INVOICE), as_of)
    books.debit_notes = receivables_at(await money(d.DEBIT_NOTE), as_of)
    books.credit_notes = dated_at(await money(d.CREDIT_NOTE), "issued_on", as_of)
    books.payments = dated_at(await money(d.PAYMENT), "received_on", as_of)
    books.programs = {p["program_id"]: p for p in await d.all_of(conn, d.PROGRAM)}
    return books
