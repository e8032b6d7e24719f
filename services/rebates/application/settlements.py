"""Settlement approval: a finance key other than the one that closed the period approves the payout.

The approved payout becomes a credit note on the partner's account (the
credit service reacts to ``SettlementApproved``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.runtime import documents
from libs.runtime.commands import Unit
from services.rebates.application import views
from services.rebates.application.rebates import append, load_rebate
from services.rebates.domain.errors import SettlementNotFound
from services.rebates.domain.rebate import decide_approval


async def read_settlement(conn: AsyncConnection, settlement_id: str) -> dict[str, Any] | None:
    return await documents.get(conn, views.SETTLEMENT, settlement_id)


async def approve(unit: Unit, settlement_id: str) -> dict[str, Any]:
    assert unit.principal is not None
    found = await read_settlement(unit.conn, settlement_id)
    if found is None:
        raise SettlementNotFound(f"no settlement {settlement_id}")
    loaded = await load_rebate(unit, found["program_id"], found["partner_id"])
    approved = decide_approval(loaded.state, settlement_id, unit.principal.key_id)
    await append(unit, loaded, approved)
    body = await read_settlement(unit.conn, settlement_id)
    assert body is not None
    return body
