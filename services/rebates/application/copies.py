"""Local copies of other services' facts, kept as documents by the reactions.

``partner-copy`` (tier, region, parent) from the partners service;
``invoice-copy`` and ``return-copy`` (the rebate ledger) from the credit service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent
from libs.events.codec import parse_json
from libs.runtime import documents
from libs.runtime.commands import Unit
from libs.store.schema import documents as documents_table
from libs.store.sql import Statement
from services.rebates.domain.eligibility import PartnerProfile
from services.rebates.domain.ledger import Application, InvoiceCopy, ReturnCopy

PARTNER, INVOICE, RETURN = "partner-copy", "invoice-copy", "return-copy"


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _text(day: date | None) -> str | None:
    return day.isoformat() if day else None


async def all_documents(
    conn: AsyncConnection, kind: str, *, partner_id: str | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Every document of a kind (optionally one partner's), page by page."""
    cursor = None
    while True:
        page = await documents.page(conn, kind, partner_id=partner_id, cursor=cursor,
                                    limit=documents.MAX_LIMIT)
        for item in page["items"]:
            yield item
        cursor = page["next_cursor"]
        if cursor is None:
            return


async def partner_profile(conn: AsyncConnection, partner_id: str) -> PartnerProfile:
    return _profile_from(partner_id, await documents.get(conn, PARTNER, partner_id))


def _profile_from(partner_id: str, body: dict[str, Any] | None) -> PartnerProfile:
    if body is None:
        return PartnerProfile(partner_id)
    changes = tuple((date.fromisoformat(c["effective_from"]), c["parent_id"])
                    for c in body.get("parent_changes", []))
    return PartnerProfile(partner_id, body.get("tier"), body.get("region"), body.get("parent_id"), changes)


def _partner_body(profile: PartnerProfile) -> dict[str, Any]:
    body: dict[str, Any] = {"partner_id": profile.partner_id, "tier": profile.tier, "region": profile.region,
                            "parent_id": profile.parent_id}
    if profile.parent_changes:
        body["parent_changes"] = [{"effective_from": day.isoformat(), "parent_id": parent_id}
                                  for day, parent_id in profile.parent_changes]
    return body


async def save_partner(conn: AsyncConnection, profile: PartnerProfile) -> None:
    await documents.put(conn, PARTNER, profile.partner_id, _partner_body(profile),
                        partner_id=profile.partner_id)


def invoice_from(body: dict[str, Any]) -> InvoiceCopy:
    return InvoiceCopy(
        invoice_id=body["invoice_id"], partner_id=body["partner_id"], order_id=body.get("order_id"),
        issued_on=_day(body.get("issued_on")), total_minor=body.get("total_minor", 0),
        currency=body.get("currency", "CNY"),
        lines=tuple((line["category"], line["amount_minor"]) for line in body.get("lines", [])),
        applications=tuple(Application(a["ref"], a["amount_minor"], _day(a.get("on")))
                           for a in body.get("applications", [])),
        paid_on=_day(body.get("paid_on")), on_time=body.get("on_time"),
    )


async def invoice_copy(conn: AsyncConnection, invoice_id: str, partner_id: str) -> InvoiceCopy:
    """The copy of an invoice; an empty one when only cash or payment news was seen so far."""
    body = await documents.get(conn, INVOICE, invoice_id)
    return invoice_from(body) if body else InvoiceCopy(invoice_id, partner_id)


async def original_invoice(conn: AsyncConnection, partner_id: str, order_id: str | None,
                           returned_on: date) -> InvoiceCopy | None:
    """The invoice a return of an order reverses: the order's first invoiced on or before the return."""
    if order_id is None:
        return None
    page = await documents.page(conn, INVOICE, partner_id=partner_id, ref_id=order_id,
                                limit=documents.MAX_LIMIT)
    found = [invoice for invoice in map(invoice_from, page["items"])
             if invoice.issued_on is not None and invoice.issued_on <= returned_on]
    return min(found, key=lambda invoice: (invoice.issued_on, invoice.invoice_id), default=None)


def timeliness_key(invoice: InvoiceCopy) -> str | None:
    """The copy's indexed ``status``: ``<issued_on>:<1 if paid on time else 0>`` (migration 0003)."""
    return f"{invoice.issued_on.isoformat()}:{1 if invoice.on_time else 0}" if invoice.issued_on else None


_TIMELINESS = Statement(
    "SELECT count(*), coalesce(sum(CASE WHEN status LIKE '%:1' THEN 1 ELSE 0 END), 0) FROM documents "
    "WHERE kind = $1 AND partner_id = $2 AND status >= $3 AND status <= $4")
"""Sent by every accrual under a timeliness bonus: straight to the driver (``libs.store.sql.Statement``)."""


async def timeliness_counts(conn: AsyncConnection, partner_id: str, first: date,
                            last: date) -> tuple[int, int]:
    """``(issued, paid_on_time)`` over the partner's invoices issued in ``first..last``, on the index."""
    [(issued, paid_on_time)] = await _TIMELINESS.fetch(conn, INVOICE, partner_id, first.isoformat(),
                                                       f"{last.isoformat()}:9")
    return int(issued), int(paid_on_time)


def _invoice_body(invoice: InvoiceCopy) -> dict[str, Any]:
    return {
        "invoice_id": invoice.invoice_id, "partner_id": invoice.partner_id, "order_id": invoice.order_id,
        "issued_on": _text(invoice.issued_on), "total_minor": invoice.total_minor,
        "currency": invoice.currency,
        "lines": [{"category": c, "amount_minor": a} for c, a in invoice.lines],
        "applications": [{"ref": a.ref, "amount_minor": a.amount_minor, "on": _text(a.on)}
                         for a in invoice.applications],
        "paid_on": _text(invoice.paid_on), "on_time": invoice.on_time,
    }


async def save_invoice(conn: AsyncConnection, invoice: InvoiceCopy) -> dict[str, Any]:
    body = _invoice_body(invoice)
    await documents.put(conn, INVOICE, invoice.invoice_id, body, partner_id=invoice.partner_id,
                        status=timeliness_key(invoice), ref_id=invoice.order_id)
    return body


# -- in a reaction: the copies a consumer batch's events name, read ahead

def _named(event: DomainEvent) -> list[documents.Key]:
    """The copies a reaction to ``event`` reads: its invoice's and its partner's."""
    named = []
    if (invoice_id := getattr(event, "invoice_id", None)) is not None:
        named.append((INVOICE, invoice_id))
    if (partner_id := getattr(event, "partner_id", None)) is not None:
        named.append((PARTNER, partner_id))
    return named


def read_ahead(events: Sequence[DomainEvent]) -> list[documents.Key]:
    """The copies a consumer batch's reactions read, read ahead in one statement
    (``libs.runtime.commands.reactions``).

    A partner's invoice copies are written only by the reactions to its account's events (one
    stream, handled one at a time); its partner copy by those to its partner stream too, whose
    order against the account's is not promised anyway (a write that depends on the copy being
    unknown reads it again: ``handlers.when_invoice_issued_accrue``)."""
    return [key for event in events for key in _named(event)]


async def profile_of(unit: Unit, partner_id: str) -> PartnerProfile:
    """The partner's copy as a reaction sees it (read ahead in a consumer batch)."""
    return _profile_from(partner_id, await unit.document(PARTNER, partner_id))


async def invoice_of(unit: Unit, invoice_id: str, partner_id: str) -> InvoiceCopy:
    """``invoice_copy`` as a reaction sees it (read ahead in a consumer batch)."""
    body = await unit.document(INVOICE, invoice_id)
    return invoice_from(body) if body else InvoiceCopy(invoice_id, partner_id)


async def keep_invoice(unit: Unit, invoice: InvoiceCopy) -> None:
    """``save_invoice``; the batch's later reactions see it."""
    unit.document_written(INVOICE, invoice.invoice_id, await save_invoice(unit.conn, invoice))


async def keep_partner(unit: Unit, profile: PartnerProfile) -> None:
    """``save_partner``; the batch's later reactions see it."""
    await save_partner(unit.conn, profile)
    unit.document_written(PARTNER, profile.partner_id, _partner_body(profile))


def return_from(body: dict[str, Any]) -> ReturnCopy:
    return ReturnCopy(
        credit_note_id=body["credit_note_id"], partner_id=body["partner_id"],
        issued_on=date.fromisoformat(body["issued_on"]), amount_minor=body["amount_minor"],
        currency=body.get("currency", "CNY"),
        lines=tuple((line["category"], line["amount_minor"]) for line in body.get("lines", [])),
        invoice_id=body.get("invoice_id"), sold_on=_day(body.get("sold_on")),
        collected_on=_day(body.get("collected_on")),
    )


async def save_return(conn: AsyncConnection, note: ReturnCopy) -> None:
    await documents.put(conn, RETURN, note.credit_note_id, {
        "credit_note_id": note.credit_note_id, "partner_id": note.partner_id,
        "issued_on": note.issued_on.isoformat(), "amount_minor": note.amount_minor,
        "currency": note.currency,
        "lines": [{"category": c, "amount_minor": a} for c, a in note.lines],
        "invoice_id": note.invoice_id, "sold_on": _text(note.sold_on),
        "collected_on": _text(note.collected_on),
    }, partner_id=note.partner_id)


async def issued_through(conn: AsyncConnection, partner_id: str, last: date) -> list[InvoiceCopy]:
    """The partner's invoices issued on or before ``last``, found on the timeliness key's index.

    All a growth baseline ending on ``last`` can hold (cash on them may be dated later):
    the current period's invoices are not read.
    """
    table = documents_table.c
    query = sa.select(table.body).where(table.kind == INVOICE, table.partner_id == partner_id,
                                        table.status <= f"{last.isoformat()}:9").order_by(table.id)
    return [invoice_from(parse_json(body)) for body in (await conn.execute(query)).scalars()]


async def partner_ledger(
    conn: AsyncConnection, partner_id: str, *, issued_by: date | None = None
) -> tuple[list[InvoiceCopy], list[ReturnCopy]]:
    """The partner's invoice and return copies (``issued_by``: only invoices issued by that date)."""
    if issued_by is not None:
        invoices = await issued_through(conn, partner_id, issued_by)
    else:
        invoices = [invoice_from(body) async for body in all_documents(conn, INVOICE, partner_id=partner_id)]
    returns = [return_from(body) async for body in all_documents(conn, RETURN, partner_id=partner_id)]
    return invoices, returns
