"""Reads: an account's position and its statements, computed from the account stream."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import credit as ev
from libs.runtime.host import ServiceContext
from services.credit.application.accounts import read_account
from services.credit.domain.account import Account, apply, stream_id
from services.credit.domain.as_of import account_at
from services.credit.domain.errors import AccountNotFound
from services.credit.domain.position import position, queue
from services.credit.domain.statement import StatementLine, closing_at, ledger, statement


def account_body(state: Account, today: date, cancelled: Collection[str]) -> dict[str, Any]:
    """The account as the API shows it (see ``services.credit.domain.position`` for the figures)."""
    figures = position(state, today, cancelled)
    return {
        "partner_id": state.partner_id, "terms": state.kind, "credit_limit_minor": state.credit_limit_minor,
        "term_days": state.term_days, "exposure_minor": figures.exposure_minor,
        "available_minor": figures.available_minor, "balance_minor": figures.balance_minor,
        "advance_minor": figures.advance_minor, "reserved_minor": figures.reserved_minor,
        "overdue_minor": figures.overdue_minor, "open_invoices_minor": figures.open_invoices_minor,
        "open_debit_notes_minor": figures.open_debit_notes_minor,
        "currency": state.currency, "suspended": state.suspended,
        "queued_orders": [{"order_id": o.order_id, "status": o.status, "amount_minor": o.total_minor,
                           "hold_reason": o.hold_reason if o.status == "held" else None}
                          for o in queue(state, cancelled)],
    }


async def account(conn: AsyncConnection, ctx: ServiceContext, partner_id: str) -> dict[str, Any]:
    loaded = await read_account(conn, ctx, partner_id)
    return account_body(loaded.state, ctx.today(), loaded.cancelled)


async def account_as_of(conn: AsyncConnection, ctx: ServiceContext, partner_id: str, day: date
                        ) -> dict[str, Any]:
    """The account as the books stood at the end of ``day`` (``domain.as_of``)."""
    loaded = await read_account(conn, ctx, partner_id)
    dated = [(ctx.registry.decode(e), e.occurred.date())
             for e in await ctx.store.load(stream_id(partner_id), conn=conn)]
    return {**account_body(account_at(partner_id, dated, day), day, loaded.cancelled),
            "as_of": day.isoformat()}


async def statement_lines(conn: AsyncConnection, ctx: ServiceContext, partner_id: str
                          ) -> tuple[Account, list[StatementLine], list[tuple[date, str]]]:
    """The account, its ledger and the partner's answers to statements (``(to, status)``, in
    order) from one load of its stream (each event decoded once)."""
    dated = [(ctx.registry.decode(e), e.occurred.date())
             for e in await ctx.store.load(stream_id(partner_id), conn=conn)]
    state = Account(partner_id=partner_id)
    answers: list[tuple[date, str]] = []
    for event, _ in dated:
        state = apply(state, event)
        if isinstance(event, ev.StatementConfirmed | ev.StatementDisputed):
            answers.append((event.to, "confirmed" if isinstance(event, ev.StatementConfirmed)
                            else "disputed"))
    if not state.opened:
        raise AccountNotFound(partner_id)
    return state, ledger(dated), answers


def _line_body(line: StatementLine) -> dict[str, Any]:
    return {"date": line.date.isoformat(), "kind": line.kind, "ref": line.ref,
            "debit_minor": line.debit_minor, "credit_minor": line.credit_minor, "memo": line.memo}


async def statement_of(conn: AsyncConnection, ctx: ServiceContext, partner_id: str, start: date, end: date
                       ) -> dict[str, Any]:
    """Opening balance before ``start``, the lines ``start``..``end``, the closing balance at ``end``."""
    state, lines, answers = await statement_lines(conn, ctx, partner_id)
    result = statement(lines, start, end)
    agreed = [status for to, status in answers if to == end]
    return {
        "partner_id": partner_id, "from": start.isoformat(), "to": end.isoformat(),
        "currency": state.currency, "opening_minor": result.opening_minor,
        "lines": [_line_body(line) for line in result.lines], "closing_minor": result.closing_minor,
        "status": agreed[-1] if agreed else None,
    }


async def closing_balance(conn: AsyncConnection, ctx: ServiceContext, partner_id: str, end: date) -> int:
    _, lines, _ = await statement_lines(conn, ctx, partner_id)
    return closing_at(lines, end)
