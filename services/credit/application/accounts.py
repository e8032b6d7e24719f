"""Loading and saving a partner's account inside one transaction.

Every change to an account goes: lock the account, load it (state + version),
decide, append with that version as the expected one, rewrite the changed
documents (``ACCOUNT`` describes the stream to ``libs.runtime.commands``). The
version check alone makes a lost update impossible (a stale decision fails
with ``ConcurrencyError`` and the command or reaction is run again on fresh
state); on PostgreSQL the account is also locked for the
transaction (``pg_advisory_xact_lock``), so racing decisions queue instead of
failing over and over. SQLite already runs one writer at a time.

A load starts from the state remembered in the process or a snapshot (``SNAPSHOTS``) and
folds only the events after it; a save remembers the state it folded (``Unit.save``), and
takes a new snapshot in the same transaction when one is due. The loaded
account holds only what is live (``domain.account``); the documents of a save are
written from the account before it with the saved events applied in full, so an
invoice the save settled is written as paid although the account lets it go.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import credit as ev
from libs.events.base import DomainEvent
from libs.runtime import commands
from libs.runtime.commands import Aggregate, Unit
from libs.runtime.host import ServiceContext
from libs.store.snapshots import SnapshotPolicy
from libs.store.sql import Statement, hold_once
from services.credit.application import copies
from services.credit.application.read_models import project
from services.credit.domain import snapshot
from services.credit.domain.account import SHAPE, STREAM_TYPE, Account, evolve, fold, stream_id
from services.credit.domain.errors import AccountNotFound

_LOCK = Statement("SELECT pg_advisory_xact_lock($1)")
"""Taken by every credit decision: straight to the driver (``libs.store.sql.Statement``)."""


def _lock_key(stream: str) -> int:
    return int.from_bytes(hashlib.sha256(stream.encode()).digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class Loaded(commands.Loaded[str, Account]):
    """An account as loaded for a decision: its state, version and the cancelled orders."""

    cancelled: frozenset[str] = frozenset()


async def _saved(unit: Unit, saved: Loaded, events: Sequence[DomainEvent], before: Account) -> None:
    """After each save (which remembers the account as it folded it, ``Unit.save``): rewrite
    the documents it changed."""
    await project(unit, fold(before, list(events)), events, saved.cancelled)


SNAPSHOTS: SnapshotPolicy[Account] = SnapshotPolicy(SHAPE, ev.EVENTS, snapshot.encode, snapshot.decode,
                                                    size=snapshot.size)
"""Account snapshots: the account stream grows with every order, so a load starts from the
state last loaded in this process (or the latest snapshot) and folds only what came after."""

ACCOUNT: Aggregate[str, Account] = Aggregate(
    stream_type=STREAM_TYPE, stream_id=stream_id,
    initial=lambda partner_id: Account(partner_id=partner_id), evolve=evolve,
    project=_saved, snapshots=SNAPSHOTS)


async def lock(unit: Unit, partner_id: str) -> None:
    """Hold the account until the transaction ends (PostgreSQL; take it before any write).
    Taken once per transaction (``hold_once``): a consumer batch's reactions share it."""
    if unit.conn.dialect.name == "postgresql":
        await hold_once(unit.conn, _LOCK, _lock_key(stream_id(partner_id)))


async def load_for_update(unit: Unit, partner_id: str) -> Loaded:
    """Lock and load the account; ``state.opened`` is False when there is none."""
    await lock(unit, partner_id)
    loaded = await unit.load(ACCOUNT, partner_id)
    return Loaded(ACCOUNT, loaded.key, loaded.state, loaded.version, head=loaded.head,
                  cancelled=await copies.cancelled(unit, partner_id))


async def open_account(unit: Unit, partner_id: str) -> Loaded:
    """Lock and load an account that must exist (404 otherwise)."""
    loaded = await load_for_update(unit, partner_id)
    if not loaded.state.opened:
        raise AccountNotFound(partner_id)
    return loaded


async def read_account(conn: AsyncConnection, ctx: ServiceContext, partner_id: str) -> Loaded:
    """Load an account without locking it (for reads)."""
    loaded = await commands.read(ctx, conn, ACCOUNT, partner_id)
    if not loaded.state.opened:
        raise AccountNotFound(partner_id)
    return Loaded(ACCOUNT, loaded.key, loaded.state, loaded.version,
                  cancelled=await copies.cancelled_orders(conn, loaded.key))
