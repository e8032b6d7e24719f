"""Wake-ups on commit: a relay sleeps until its store holds something new to publish.

A wake-up is a hint for latency only. The relay still reads the store on a slow
fallback poll, so a lost wake-up costs at most one poll interval, never an event.

- **Writers in the relay's process** (the service's API and consumers):
  ``Database.transaction()`` signals :class:`Commits` right after the commit of a
  transaction in which the store appended events. No database work at all.
- **Writers in other processes on PostgreSQL** (another replica of the service, the
  CLI): a writer whose own process has no leading relay for the store adds
  ``SELECT pg_notify(channel, tx_id)`` to its appending transaction; PostgreSQL
  delivers it only when that transaction commits (never for a rollback). The
  leading relay LISTENs on its own connection (:class:`CommitListener`) and
  reconnects when it is lost. Writers in the leading relay's process skip the
  NOTIFY: a committing transaction that notified holds a global lock through its
  WAL flush, which serialises such commits (measured with 16 concurrent writers on
  this 2-core machine: a quarter to a half of the commit rate).
- **Writers in other processes on SQLite** (the CLI): the fallback poll.

On PostgreSQL a commit is not always readable at once: the relay reads only behind
the oldest running transaction (see ``libs.store.store``). So a signal carries the
committed transaction's id (``tx_id``); while the relay's checkpoint is behind the
newest one signalled, it reads again soon (backing off) instead of waiting for the
next signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from libs.store.database import Database

log = logging.getLogger(__name__)

APPENDED = "o2c.appended_tx"
"""Key in a connection's ``info``: the store appended in the open transaction (its tx id)."""


def channel_for(schema: str | None) -> str:
    """The NOTIFY channel of one service's store (a PostgreSQL identifier, at most 63 bytes)."""
    channel = f"o2c_events_{schema}" if schema else "o2c_events"
    if len(channel) > 63:
        channel = "o2c_events_" + hashlib.sha256(channel.encode()).hexdigest()[:40]
    return channel


def listener_name(channel: str) -> str:
    """The ``application_name`` of a relay's LISTEN connection (in ``pg_stat_activity``)."""
    return f"o2c listen {channel}"[:63]


class Commits:
    """This process's signal that a store's appending transaction committed."""

    def __init__(self) -> None:
        self.count = 0
        """Signals so far: read it before looking at the store, then wait for a change."""
        self.tx_id = 0
        """The newest transaction id signalled (PostgreSQL; always 0 on SQLite)."""
        self.relays_leading = 0
        """Relays publishing this store from this process: while one does, writers here
        need no NOTIFY."""
        self._event = asyncio.Event()

    def committed(self, tx_id: int = 0) -> None:
        self.count += 1
        self.tx_id = max(self.tx_id, tx_id)
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, seen: int, stop: asyncio.Event, seconds: float) -> None:
        """Until a signal after ``seen`` (a :attr:`count`), ``stop``, or ``seconds`` passed."""
        if self.count != seen or stop.is_set() or seconds <= 0:
            return
        waits = (asyncio.ensure_future(self._event.wait()), asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()


class CommitListener:
    """LISTENs on a PostgreSQL store's channel on a connection of its own.

    Losing the connection wakes the relay, whose next :meth:`ensure` (called before
    each read) connects again and whose read then takes whatever committed meanwhile;
    while the server cannot be reached, the relay's fallback poll covers the gap. Behind a
    pooler in transaction mode (PgBouncer) LISTEN does not work: point
    ``O2C_DATABASE_URL`` at the server or a session-mode pool (see docs/operations.md).
    """

    def __init__(self, db: Database) -> None:
        self._dsn = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._commits = db.commits
        self.channel = channel_for(db.schema)
        self._settings = {"application_name": listener_name(self.channel),
                          **({"search_path": db.schema} if db.schema else {})}
        self._conn: Any = None
        self._failing = False
        self.connects = 0

    async def ensure(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            return
        await self.close()
        try:
            self._conn = await asyncpg.connect(self._dsn, timeout=5,
                                               server_settings=self._settings)
            await self._conn.add_listener(self.channel, self._notified)
            self._conn.add_termination_listener(self._lost)
            # Commits from now on are notified; the newest before is read here, so the
            # relay keeps reading until it has passed it, even behind the horizon.
            newest = await self._conn.fetchval("SELECT coalesce(max(tx_id), 0) FROM events")
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            await self.close()
            if not self._failing:  # once per outage, not on every fallback read
                log.warning("cannot LISTEN for commits on %s (%r); polling meanwhile",
                            self.channel, error)
            self._failing = True
            return
        self._failing = False
        self.connects += 1
        self._commits.committed(int(newest))

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            tx_id = int(payload)
        except ValueError:
            tx_id = 0
        self._commits.committed(tx_id)

    def _lost(self, _conn: Any) -> None:
        self._commits.committed()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.remove_termination_listener(self._lost)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
            if not conn.is_closed():
                conn.terminate()
