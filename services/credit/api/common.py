"""Small helpers shared by the credit routes: running commands, partner scoping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.runtime.aggregate import retry_on_conflict
from libs.runtime.auth import Principal
from libs.runtime.host import ServiceContext
from libs.runtime.idempotency import respond_once

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


async def run_command(ctx: ServiceContext, command: Callable[[AsyncConnection], Awaitable[Any]]) -> Any:
    """Run ``command`` in a transaction, again on a concurrent update of the account."""

    async def attempt() -> Any:
        async with ctx.db.transaction() as conn:
            return await command(conn)

    return await retry_on_conflict(attempt)


async def run_once(ctx: ServiceContext, principal: Principal, route: str, key: str | None, body: BaseModel,
                   status: int, command: Callable[[AsyncConnection], Awaitable[dict[str, Any]]]
                   ) -> JSONResponse:
    """Like ``run_command``, answering ``status``; a repeated ``Idempotency-Key`` answers the first reply."""

    async def answered(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        return status, await command(conn)

    return await retry_on_conflict(lambda: respond_once(ctx.db, principal, route, key, body, answered))

