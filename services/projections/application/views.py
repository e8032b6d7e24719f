"""The queries behind the views: read the archive and the read models, shape with domain rules."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.codec import parse_json
from libs.events.orders import OrderPlaced
from services.projections.application import archive
from services.projections.application import documents as d
from services.projections.domain import aging as aging_rules
from services.projections.domain import channel, receivables, sales
from services.projections.domain import rebates as rebate_rules
from services.projections.domain.as_of import dated_at, receivables_at
from services.projections.domain.partner_view import partner_360
from services.projections.domain.timeline import causal_order


@dataclass(frozen=True)
class Timeline:
    order_id: str
    partner_id: str | None
    events: list[dict[str, Any]]


def event_item(row: archive.Shown) -> dict[str, Any]:
    """An archived event as the timeline shows it (``api.schemas.TimelineEvent``, field by field).

    The payload is the stored canonical JSON, passed through as it is (``orjson.Fragment``):
    parsing it only for the answer to print it again gave the same bytes (compact, keys in
    the stored order), so the answer is rendered as is, not validated by its model again."""
    return {
        "service": row.service, "type": row.event_type, "occurred_at": row.occurred_at,
        "actor": row.actor, "data": orjson.Fragment(row.data), "event_id": row.event_id,
        "causation_id": row.causation_id, "correlation_id": row.correlation_id,
        "stream_id": row.stream_id, "stream_version": row.stream_version,
    }


def audit_item(row: archive.Shown) -> dict[str, Any]:
    """An archived event with everything its hash covers, and the hash (``api.schemas.AuditEvent``)."""
    return {
        **event_item(row), "received_seq": row.received_seq, "position": row.position,
        "schema_version": row.schema_version, "stream_type": row.stream_type,
        "stream_hash": row.stream_hash, "order_id": row.order_id, "partner_id": row.partner_id,
    }


async def order_timeline(conn: AsyncConnection, order_id: str) -> Timeline | None:
    """Every archived event of the order in causal order; None when none arrived.

    The order's events are those naming it and those of its placing conversation
    (same correlation id), except events of that conversation naming another
    order or another partner: they belong to those; the partner's own events
    that caused one of them (its termination, suspension or reinstatement); and
    the events of the deal registration that priced it. One statement reads them all
    (``archive.events_of_order``).
    """
    rows = await archive.events_of_order(conn, order_id)
    if not rows:
        return None
    by_arrival = sorted(rows, key=_arrival)
    placed = next((row for row in by_arrival
                   if row.event_type == OrderPlaced.TYPE and row.order_id == order_id), None)
    placement = parse_json(placed.data) if placed else {}
    partner_id = placement["partner_id"] if placed else next(
        (row.partner_id for row in by_arrival if row.order_id == order_id and row.partner_id), None)
    rows = [row for row in rows if row.order_id in (None, order_id)
            and row.partner_id in (None, partner_id)]
    ordered = causal_order(
        rows, event_id=lambda r: r.event_id, causation_id=lambda r: r.causation_id,
        key=lambda r: (r.occurred_at, r.service, r.position or 0, r.received_seq))
    return Timeline(order_id, partner_id, [event_item(row) for row in ordered])


def _arrival(row: archive.Shown) -> int:
    return row.received_seq


async def partner_view(conn: AsyncConnection, partner_id: str, today: date) -> dict[str, Any] | None:
    partner = await d.get(conn, d.PARTNER, partner_id)
    if partner is None:
        return None

    async def of(kind: str) -> list[dict[str, Any]]:
        return await d.all_of(conn, kind, partner_id=partner_id)

    coop_programs = {p["program_id"] for p in await d.all_of(conn, d.PROGRAM) if p.get("kind") == "coop"}
    accruals = await of(d.ACCRUAL)
    view = partner_360(
        partner, orders=await of(d.ORDER), invoices=await of(d.INVOICE),
        credit_notes=await of(d.CREDIT_NOTE), payments=await of(d.PAYMENT),
        accruals=[a for a in accruals if a["program_id"] not in coop_programs],
        settlements=await of(d.SETTLEMENT), today=today, debit_notes=await of(d.DEBIT_NOTE),
        deals=await of(d.DEAL))
    children = [p for p in await d.all_of(conn, d.PARTNER) if channel.ever_under(partner_id, p)]
    subs = channel.sub_dealer_sales(
        partner_id, children,
        {c["partner_id"]: await d.all_of(conn, d.INVOICE, partner_id=c["partner_id"]) for c in children},
        {c["partner_id"]: await d.all_of(conn, d.CREDIT_NOTE, partner_id=c["partner_id"]) for c in children})
    sub_total = sum(row["sales_minor"] for row in subs)
    view["sales"] = {"own_minor": view["sales_minor"], "sub_dealers_minor": sub_total,
                     "total_minor": view["sales_minor"] + sub_total, "sub_dealers": subs}
    view["coop"] = channel.coop_view(await of(d.COOP_FUND), {
        a["program_id"]: a for a in accruals if a["program_id"] in coop_programs})
    return view


async def _partners(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    return {p["partner_id"]: p for p in await d.all_of(conn, d.PARTNER)}


async def aging_view(conn: AsyncConnection, as_of: date) -> dict[str, Any]:
    """The default aging at the end of ``as_of``, money on account and all (as the report's)."""
    partners = await _partners(conn)
    invoices = receivables_at(await d.all_of(conn, d.INVOICE), as_of)
    debit_notes = receivables_at(await d.all_of(conn, d.DEBIT_NOTE), as_of)
    money = aging_rules.on_account([*invoices, *debit_notes], aging_rules.balances(
        invoices=invoices, debit_notes=debit_notes,
        payments=dated_at(await d.all_of(conn, d.PAYMENT), "received_on", as_of),
        credit_notes=dated_at(await d.all_of(conn, d.CREDIT_NOTE), "issued_on", as_of)), as_of)
    rows = aging_rules.aging([*invoices, *debit_notes], as_of, money_on_account=money)
    items = [{**row, "name": partners.get(row["partner_id"], {}).get("name")} for row in rows]
    totals = {key: sum(row[key] for row in rows)
              for key in (*receivables.BUCKETS, "on_account_minor", "total_minor")}
    return {"as_of": as_of.isoformat(), "items": items, "totals": totals, "next_cursor": None}


async def sales_view(conn: AsyncConnection, group_by: sales.GroupBy, start: date | None,
                     end: date | None) -> dict[str, Any]:
    rows = sales.sales(await d.all_of(conn, d.INVOICE), await d.all_of(conn, d.CREDIT_NOTE),
                       group_by=group_by, start=start, end=end, partners=await _partners(conn))
    return {
        "group_by": group_by, "from": start.isoformat() if start else None,
        "to": end.isoformat() if end else None, "items": rows,
        "total_minor": sum(row["amount_minor"] for row in rows), "next_cursor": None,
    }


async def rebates_view(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Rebates accrued vs settled per program."""
    programs = {p["program_id"]: p for p in await d.all_of(conn, d.PROGRAM)}
    return rebate_rules.by_program(await d.all_of(conn, d.ACCRUAL),
                                   await d.all_of(conn, d.SETTLEMENT), programs)


async def audit_events(
    conn: AsyncConnection, *, service: str | None, stream_id: str | None,
    correlation_id: uuid.UUID | None, after: int, limit: int,
) -> dict[str, Any]:
    rows = await archive.page_events(conn, service=service, stream_id=stream_id,
                                     correlation_id=correlation_id, after=after, limit=limit)
    next_cursor = str(rows[-1].received_seq) if len(rows) == limit else None
    return {"items": [audit_item(row) for row in rows], "next_cursor": next_cursor}


async def coop_funds(conn: AsyncConnection, partner_ids: set[str] | None) -> list[dict[str, Any]]:
    """Every co-op fund (``partner_ids``: of those partners only), as ``channel.coop_fund_rows``."""
    programs = {p["program_id"]: p for p in await d.all_of(conn, d.PROGRAM) if p.get("kind") == "coop"}
    funds = await d.all_of(conn, d.COOP_FUND)
    accruals = await d.all_of(conn, d.ACCRUAL)
    rows = channel.coop_fund_rows(programs, funds, accruals)
    return [r for r in rows if partner_ids is None or r["partner_id"] in partner_ids]
