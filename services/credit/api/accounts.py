"""Accounts, terms and statements."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from libs.runtime.errors import DomainError
from libs.runtime.idempotency import Command, IdempotentCommand
from libs.runtime.openapi_doc import answers
from libs.runtime.params import MaybeDate, PathId, QueryDate
from services.credit.api.deps import Ctx, Finance, PartnerKey, Reader
from services.credit.api.schemas import (
    Account,
    ConfirmBody,
    DisputeBody,
    Statement,
    StatementAnswer,
    TermsBody,
)
from services.credit.application import commands, queries
from services.credit.domain.errors import AccountNotFound

router = APIRouter(tags=["accounts"])


@router.get("/v1/accounts/{partner_id}", **answers(Account))
async def get_account(partner_id: PathId, principal: Reader, ctx: Ctx,
                      as_of: QueryDate = None) -> dict[str, Any]:
    """The partner's terms and position: exposure, available room, balance, advance, overdue;
    with ``as_of``, as the books stood at the end of that day (dated by the business dates the
    statement uses, so ``balance_minor`` is the statement's closing balance for that day).

    exposure = open invoice and debit note amounts + approved orders not yet invoiced;
    available = max(limit - exposure, 0) on credit terms, the unreserved advance on prepaid
    terms; balance = open invoice and debit note amounts - all money on the account (advance +
    reserved), i.e. what the partner owes, equal to its statement's closing balance.
    """
    if not principal.sees(partner_id):
        raise AccountNotFound(partner_id)
    async with ctx.db.read() as conn:
        if as_of is not None:
            return await queries.account_as_of(conn, ctx, partner_id, as_of)
        return await queries.account(conn, ctx, partner_id)


@router.put("/v1/accounts/{partner_id}/terms", response_model=Account)
async def change_terms(partner_id: PathId, body: TermsBody, _: Finance, command: Command) -> Response:
    """Change payment terms (prepaid: no limit, no term); held and awaiting orders are re-evaluated."""
    return await command.run(lambda unit: commands.change_terms(
        unit, partner_id, body.kind, body.credit_limit_minor, body.term_days), body)


@router.get("/v1/statements/{partner_id}", **answers(Statement))
async def get_statement(
    partner_id: PathId, principal: Reader, ctx: Ctx,
    start: Annotated[MaybeDate, Query(alias="from")] = None,
    end: Annotated[MaybeDate, Query(alias="to")] = None,
) -> dict[str, Any]:
    """Opening balance, invoice/debit note/payment/credit note/write-off lines and closing balance.

    ``to`` defaults to today, ``from`` to the first day of ``to``'s month.
    """
    if not principal.sees(partner_id):
        raise AccountNotFound(partner_id)
    end = end or ctx.today()
    start = start or end.replace(day=1)
    if start > end:
        raise DomainError("from must not be after to", slug="bad-period")
    async with ctx.db.read() as conn:
        return await queries.statement_of(conn, ctx, partner_id, start, end)


@router.post("/v1/statements/{partner_id}/confirm", status_code=201, response_model=StatementAnswer)
async def confirm_statement(partner_id: PathId, body: ConfirmBody, principal: PartnerKey,
                            command: IdempotentCommand) -> Response:
    """The partner agrees its balance at ``to``; a different closing balance answers 409."""
    if not principal.sees(partner_id):
        raise AccountNotFound(partner_id)
    return await command.run(lambda unit: commands.answer_statement(
        unit, partner_id, body.to, closing_minor=body.closing_minor), body)


@router.post("/v1/statements/{partner_id}/dispute", status_code=201, response_model=StatementAnswer)
async def dispute_statement(partner_id: PathId, body: DisputeBody, principal: PartnerKey,
                            command: IdempotentCommand) -> Response:
    """The partner disputes its statement up to ``to``, with a reason."""
    if not principal.sees(partner_id):
        raise AccountNotFound(partner_id)
    return await command.run(lambda unit: commands.answer_statement(
        unit, partner_id, body.to, reason=body.reason), body)
