"""Settlement approval: a finance key other than the one that closed the period approves the payout.

The approved payout becomes a credit note on the partner's account (the
credit service reacts to ``SettlementApproved``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import EventMetadata
from libs.runtime import documents
from libs.runtime.auth import Principal
from libs.runtime.host import ServiceContext
from services.rebates.application import views
from services.rebates.application.rebates import append, load_rebate, write
from services.rebates.domain.errors import SettlementNotFound
from services.rebates.domain.rebate import decide_approval


async def read_settlement(conn: AsyncConnection, settlement_id: str) -> dict[str, Any] | None:
    return await documents.get(conn, views.SETTLEMENT, settlement_id)


async def approve(conn: AsyncConnection, ctx: ServiceContext, principal: Principal,
                  settlement_id: str) -> dict[str, Any]:
    found = await read_settlement(conn, settlement_id)
    if found is None:
        raise SettlementNotFound(f"no settlement {settlement_id}")
    loaded = await load_rebate(conn, ctx, found["program_id"], found["partner_id"])
    approved = decide_approval(loaded.state, settlement_id, principal.key_id)
    loaded = await append(conn, ctx, loaded, approved, EventMetadata(actor=principal.actor))
    await write(conn, loaded)
    body = await read_settlement(conn, settlement_id)
    assert body is not None
    return body
