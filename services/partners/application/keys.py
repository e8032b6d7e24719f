"""Key commands. The secret is generated here, returned once, and only its sha256 is recorded.

Issuing and revoking also write this service's own copy of the keys
(``libs.runtime.auth.store_key`` / ``revoke_key``) in the same transaction,
and reload the key ring after the commit, so this service accepts a new key
(and refuses a revoked one) at once; the other services follow from the events.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from libs.events.base import DomainEvent
from libs.events.partners import KeyIssued
from libs.runtime import documents
from libs.runtime.auth import hash_secret, revoke_key, store_key
from libs.runtime.commands import Aggregate, Loaded, Unit
from libs.runtime.host import ServiceContext
from libs.runtime.ids import new_id
from services.partners.application.read_models import KEY, key_body, partner_exists, save_key
from services.partners.domain.commands import IssueKey
from services.partners.domain.key import ApiKey, decide_issue, decide_revoke, evolve

STREAM_TYPE = "api-key"


def stream_of(key_id: str) -> str:
    return f"key-{key_id}"


async def _write_key(unit: Unit, loaded: Loaded[str, ApiKey], events: Sequence[DomainEvent],
                     before: ApiKey) -> None:
    """This service's own copy of the key and the key document (the ring reloads after commit)."""
    for event, envelope in zip(events, loaded.stored, strict=True):
        if isinstance(event, KeyIssued):
            await store_key(unit.conn, event, envelope.occurred_at)
            await save_key(unit.conn, key_body(evolve(ApiKey(), event), envelope.occurred_at))
        else:
            await revoke_key(unit.conn, loaded.key)
            body = await documents.get(unit.conn, KEY, loaded.key) or key_body(loaded.state, "")
            await save_key(unit.conn, {**body, "revoked": True, "revoked_at": envelope.occurred_at})


API_KEY: Aggregate[str, ApiKey] = Aggregate(
    stream_type=STREAM_TYPE, stream_id=stream_of, initial=lambda key_id: ApiKey(), evolve=evolve,
    project=_write_key)


async def issue_key(unit: Unit, *, role: str, partner_id: str | None, name: str | None) -> dict[str, Any]:
    """Issue a key; answers the key with its ``secret`` (the only time it is ever shown)."""
    secret = secrets.token_urlsafe(32)
    key_id = new_id("key")
    known = partner_id is not None and await partner_exists(unit.conn, partner_id)
    command = IssueKey(key_id=key_id, role=role, partner_id=partner_id, name=name,  # type: ignore[arg-type]
                       secret_sha256=hash_secret(secret))
    await unit.save(Loaded(API_KEY, key_id, ApiKey(), 0), decide_issue(command, partner_exists=known))
    body = await documents.get(unit.conn, KEY, key_id)
    assert body is not None
    return {**body, "secret": secret}


async def revoke(unit: Unit, key_id: str) -> None:
    """Revoke a key (unknown: 404); revoking a revoked key appends nothing."""
    await unit.change(API_KEY, key_id, lambda state: decide_revoke(state, key_id))


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
