"""Key commands. The secret is generated here, returned once, and only its sha256 is recorded.

Issuing and revoking also write this service's own copy of the keys
(``libs.runtime.auth.store_key`` / ``revoke_key``) in the same transaction,
and reload the key ring after the commit, so this service accepts a new key
(and refuses a revoked one) at once; the other services follow from the events.
"""

from __future__ import annotations

import secrets
from typing import Any

from libs.events.base import EventMetadata
from libs.events.partners import KeyIssued
from libs.runtime import aggregate, documents
from libs.runtime.auth import hash_secret, revoke_key, store_key
from libs.runtime.host import ServiceContext
from libs.runtime.ids import new_id
from services.partners.application.read_models import KEY, key_body, partner_exists, save_key
from services.partners.domain.commands import IssueKey
from services.partners.domain.key import ApiKey, decide_issue, decide_revoke, evolve

STREAM_TYPE = "api-key"


def stream_of(key_id: str) -> str:
    return f"key-{key_id}"


async def issue_key(
    ctx: ServiceContext, *, role: str, partner_id: str | None, name: str | None,
    meta: EventMetadata,
) -> dict[str, Any]:
    """Issue a key; answers the key with its ``secret`` (the only time it is ever shown)."""
    secret = secrets.token_urlsafe(32)
    key_id = new_id("key")
    async with ctx.db.transaction() as conn:
        known = partner_id is not None and await partner_exists(conn, partner_id)
        command = IssueKey(key_id=key_id, role=role, partner_id=partner_id, name=name,  # type: ignore[arg-type]
                           secret_sha256=hash_secret(secret))
        events = decide_issue(command, partner_exists=known)
        envelopes = await ctx.store.append(stream_of(key_id), STREAM_TYPE, 0, events, meta, conn=conn)
        issued = events[0]
        assert isinstance(issued, KeyIssued)
        await store_key(conn, issued, envelopes[0].occurred_at)
        body = key_body(evolve(ApiKey(), issued), envelopes[0].occurred_at)
        await save_key(conn, body)
    await ctx.keyring.refresh()
    return {**body, "secret": secret}


async def revoke(ctx: ServiceContext, key_id: str, meta: EventMetadata) -> None:
    """Revoke a key (unknown: 404); revoking a revoked key appends nothing."""

    async def attempt() -> None:
        async with ctx.db.transaction() as conn:
            state, version = await aggregate.load(conn, ctx.store, ctx.registry, stream_of(key_id),
                                                  ApiKey(), evolve)
            events = decide_revoke(state, key_id)
            if not events:
                return
            envelopes = await ctx.store.append(stream_of(key_id), STREAM_TYPE, version, events,
                                               meta, conn=conn)
            await revoke_key(conn, key_id)
            body = await documents.get(conn, KEY, key_id) or key_body(state, "")
            await save_key(conn, {**body, "revoked": True, "revoked_at": envelopes[0].occurred_at})

    await aggregate.retry_on_conflict(attempt)
    await ctx.keyring.refresh()


async def list_keys(ctx: ServiceContext, *, role: str | None, partner_id: str | None,
                    revoked: bool | None, cursor: str | None, limit: int) -> dict[str, Any]:
    status = None if revoked is None else ("revoked" if revoked else "active")
    async with ctx.db.read() as conn:
        return await documents.page(
            conn, KEY, partner_id=partner_id, status=status, ref_id=role or None, cursor=cursor,
            limit=limit)


async def get_key(ctx: ServiceContext, key_id: str) -> dict[str, Any] | None:
    async with ctx.db.read() as conn:
        return await documents.get(conn, KEY, key_id)
