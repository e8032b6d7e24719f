"""API-key routes (admin only): issue, list, read, revoke.

``POST /v1/keys`` does not replay on ``Idempotency-Key``: a replay would have to
store the secret, which is only ever shown once and stored hashed.
Revoking a key already revoked answers 204 again and records nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response

from libs.events.values import Role
from libs.runtime.documents import MAX_LIMIT
from libs.runtime.idempotency import Command
from libs.runtime.params import Cursor, PathId, QueryText
from services.partners.api.deps import Admin, Ctx
from services.partners.api.schemas import IssuedKeyOut, IssueKeyIn, KeyOut, KeyPage
from services.partners.application import keys
from services.partners.domain.errors import KeyNotFound

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.post("", status_code=201, response_model=IssuedKeyOut)
async def issue_key(body: IssueKeyIn, _: Admin, ctx: Ctx, command: Command) -> Response:
    """Issue a key; the answer carries the secret, shown this once."""
    issued = await command.run(lambda unit: keys.issue_key(
        unit, role=body.role, partner_id=body.partner_id, name=body.name), body)
    await ctx.keyring.refresh()  # this service accepts the new key at once
    return issued


@router.get("", response_model=KeyPage)
async def list_keys(
    _: Admin, ctx: Ctx, role: Role | None = None, partner_id: QueryText = None,
    revoked: bool | None = None, limit: int = Query(50, ge=1, le=MAX_LIMIT),
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Keys in id order, without secrets."""
    return await keys.list_keys(ctx, role=role, partner_id=partner_id, revoked=revoked,
                                cursor=cursor, limit=limit)


@router.get("/{key_id}", response_model=KeyOut)
async def get_key(key_id: PathId, _: Admin, ctx: Ctx) -> dict[str, Any]:
    """One API key (never its secret): its role, partner and whether it is revoked. Admin only."""
    found = await keys.get_key(ctx, key_id)
    if found is None:
        raise KeyNotFound(key_id)
    return found


@router.delete("/{key_id}", status_code=204)
async def revoke_key(key_id: PathId, _: Admin, ctx: Ctx, command: Command) -> Response:
    """Revoke a key; every service refuses it within seconds (this one at once)."""
    revoked = await command.run(lambda unit: keys.revoke(unit, key_id))
    await ctx.keyring.refresh()
    return revoked
