"""Loading and saving a partner's account inside one transaction.

Every change to an account goes: lock the account, load it (state + version),
decide, append with that version as the expected one, rewrite the changed
documents. The version check alone makes a lost update impossible (a stale
decision fails with ``ConcurrencyError`` and the command or reaction is run
again on fresh state); on PostgreSQL the account is also locked for the
transaction (``pg_advisory_xact_lock``), so racing decisions queue instead of
failing over and over. SQLite already runs one writer at a time.

A load starts from a snapshot (``SNAPSHOTS``) and folds only the events after it;
``save`` takes a new snapshot in the same transaction when one is due.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import credit as ev
from libs.events.base import DomainEvent, EventMetadata
from libs.runtime.aggregate import load
from libs.runtime.host import ServiceContext
from libs.store.snapshots import SnapshotPolicy, save_if_due
from services.credit.application.copies import cancelled_orders
from services.credit.application.read_models import project
from services.credit.domain import snapshot
from services.credit.domain.account import SHAPE, STREAM_TYPE, Account, evolve, fold, stream_id
from services.credit.domain.errors import AccountNotFound

SNAPSHOTS: SnapshotPolicy[Account] = SnapshotPolicy(SHAPE, ev.EVENTS, snapshot.encode, snapshot.decode,
                                                    size=snapshot.size)
"""Account snapshots: the account stream grows with every order, so a load starts from the
state last loaded in this process (or the latest snapshot) and folds only what came after."""

_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def _lock_key(stream: str) -> int:
    return int.from_bytes(hashlib.sha256(stream.encode()).digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class Loaded:
    """An account as loaded for a decision: its state, version and the cancelled orders."""

    state: Account
    version: int
    cancelled: frozenset[str]


async def lock(conn: AsyncConnection, partner_id: str) -> None:
    """Hold the account until the transaction ends (PostgreSQL; take it before any write)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(_LOCK, {"key": _lock_key(stream_id(partner_id))})


async def load_for_update(conn: AsyncConnection, ctx: ServiceContext, partner_id: str) -> Loaded:
    """Lock and load the account; ``state.opened`` is False when there is none."""
    await lock(conn, partner_id)
    return await _load(conn, ctx, partner_id)


async def _load(conn: AsyncConnection, ctx: ServiceContext, partner_id: str) -> Loaded:
    state, version = await load(conn, ctx.store, ctx.registry, stream_id(partner_id),
                                Account(partner_id=partner_id), evolve, snapshots=SNAPSHOTS)
    return Loaded(state, version, await cancelled_orders(conn, partner_id))


async def open_account(conn: AsyncConnection, ctx: ServiceContext, partner_id: str) -> Loaded:
    """Lock and load an account that must exist (404 otherwise)."""
    loaded = await load_for_update(conn, ctx, partner_id)
    if not loaded.state.opened:
        raise AccountNotFound(partner_id)
    return loaded


async def read_account(conn: AsyncConnection, ctx: ServiceContext, partner_id: str) -> Loaded:
    """Load an account without locking it (for reads)."""
    loaded = await _load(conn, ctx, partner_id)
    if not loaded.state.opened:
        raise AccountNotFound(partner_id)
    return loaded


async def save(conn: AsyncConnection, ctx: ServiceContext, loaded: Loaded, events: Sequence[DomainEvent],
               meta: EventMetadata, event_ids: Sequence[uuid.UUID] | None = None) -> Account:
    """Append the decided events at the loaded version and rewrite the documents they changed."""
    if not events:
        return loaded.state
    stream = stream_id(loaded.state.partner_id)
    await ctx.store.append(stream, STREAM_TYPE, loaded.version, list(events), meta, conn=conn,
                           event_ids=event_ids)
    state = fold(loaded.state, list(events))
    await project(conn, state, events, loaded.cancelled)
    await save_if_due(conn, stream, state, loaded.version + len(events), SNAPSHOTS)
    return state
