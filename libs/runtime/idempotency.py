"""``Idempotency-Key`` for creating POSTs.

A repeat with the same key and the same body answers the first response again
(same status, same body); the same key with another body answers 409. The
record is written in the same transaction as the command's effect, so a crash
leaves either both or neither.

Concurrent requests with one key queue behind each other, so the command runs
once and every other request replays its answer (never a 409 from the command
seeing the first one's effect). On PostgreSQL each transaction first takes an
advisory lock on a hash of (schema, caller, route, key), held until commit or
rollback; on SQLite write transactions are already serial (``BEGIN IMMEDIATE``
behind the process's write lock), so the stored answer is always seen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import format_timestamp, utc_now
from libs.events.codec import canonical_json
from libs.runtime.auth import Principal
from libs.runtime.errors import Conflict
from libs.store.database import Database
from libs.store.schema import idempotency_keys

Command = Callable[[AsyncConnection], Awaitable[tuple[int, dict[str, Any]]]]


async def respond_once(
    db: Database, principal: Principal, route: str, key: str | None, body: BaseModel,
    command: Command,
) -> JSONResponse:
    """Run ``command`` in a transaction, at most once per (caller, route, key)."""
    if key is None:
        async with db.transaction() as conn:
            status, payload = await command(conn)
        return JSONResponse(payload, status_code=status)
    if len(key) > 200:
        raise Conflict("Idempotency-Key is longer than 200 characters", slug="bad-idempotency-key")
    digest = hashlib.sha256(canonical_json(body.model_dump(mode="json"))).hexdigest()
    for attempt in range(2):
        try:
            async with db.transaction() as conn:
                await _queue_behind_same_key(conn, db, principal, route, key)
                stored = (await conn.execute(select(
                    idempotency_keys.c.request_sha256, idempotency_keys.c.status,
                    idempotency_keys.c.body).where(
                    idempotency_keys.c.principal == principal.key_id,
                    idempotency_keys.c.route == route, idempotency_keys.c.key == key))).first()
                if stored is not None:
                    if stored[0] != digest:
                        raise Conflict("this Idempotency-Key was used with a different body",
                                       slug="idempotency-key-reused")
                    return _answer(stored[1], stored[2])
                status, payload = await command(conn)
                stored_body = canonical_json(payload).decode("utf-8")
                await conn.execute(idempotency_keys.insert().values(
                    principal=principal.key_id, route=route, key=key, request_sha256=digest,
                    status=status, body=stored_body, created_at=format_timestamp(utc_now())))
            return _answer(status, stored_body)
        except IntegrityError:
            # A concurrent request with the same key won the insert: answer what it stored.
            # Any other integrity error is the command's own and must not pass for a replay.
            if attempt == 0 and await _stored(db, principal, route, key):
                continue
            raise
    raise Conflict("concurrent requests with the same Idempotency-Key", slug="idempotency-key-reused")


class _StoredAnswer(JSONResponse):
    """A JSON response sent as the stored canonical text, byte for byte."""

    def render(self, content: Any) -> bytes:
        return str(content).encode("utf-8")


def _answer(status: int, stored_body: str) -> JSONResponse:
    """What was stored: the first request and every replay get the same bytes."""
    return _StoredAnswer(stored_body, status_code=status)


async def _queue_behind_same_key(conn: AsyncConnection, db: Database, principal: Principal,
                                 route: str, key: str) -> None:
    """Wait for any other transaction holding this (caller, route, key); PostgreSQL only."""
    if not db.is_postgres:
        return
    name = canonical_json([db.schema, principal.key_id, route, key])
    lock_id = int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)
    await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})


async def _stored(db: Database, principal: Principal, route: str, key: str) -> bool:
    async with db.read() as conn:
        return (await conn.execute(select(idempotency_keys.c.key).where(
            idempotency_keys.c.principal == principal.key_id,
            idempotency_keys.c.route == route, idempotency_keys.c.key == key))).first() is not None
