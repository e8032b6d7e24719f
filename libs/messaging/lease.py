"""Leadership among replicas: only one relay per store publishes at a time.

PostgreSQL: a session advisory lock held on a dedicated connection; if the
holder dies its connection closes and the lock is free at once.
SQLite (one machine): a lease row with an expiry that the holder renews; a
holder that stops renewing loses it after ``ttl`` seconds, and at once when its
process is gone (the row names the holder's host and process id, and a database
file is only ever shared by processes of one machine): a service restarted after
a crash need not wait out the dead holder's lease.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
import uuid
from typing import Protocol

from sqlalchemy import delete, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.store.database import Database
from libs.store.schema import leases
from libs.store.sql import upsert


class Lease(Protocol):
    async def acquire(self) -> bool:
        """Try to become the holder; True when this replica holds the lease now."""

    async def renew(self) -> bool:
        """Keep holding; False when the lease was lost."""

    async def release(self) -> None:
        """Give the lease up (idempotent)."""


def lease_for(db: Database, name: str, ttl: float = 10.0) -> Lease:
    return AdvisoryLease(db, name) if db.is_postgres else RowLease(db, name, ttl)


def advisory_key(schema: str | None, name: str) -> int:
    """The advisory lock of lease ``name`` in ``schema`` (the key ``pg_locks`` shows as
    ``classid << 32 | objid``)."""
    digest = hashlib.sha256(f"o2c:{schema}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AdvisoryLease:
    """``pg_try_advisory_lock`` on a connection kept for as long as the lease is held."""

    def __init__(self, db: Database, name: str) -> None:
        self._db = db
        self._key = advisory_key(db.schema, name)
        self._conn: AsyncConnection | None = None

    async def acquire(self) -> bool:
        if self._conn is not None:
            return await self.renew()
        conn = await self._db.engine.connect()
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key})).scalar()
        if got:
            self._conn = conn
            return True
        await conn.close()
        return False

    async def renew(self) -> bool:
        if self._conn is None:
            return False
        try:
            await self._conn.execute(text("SELECT 1"))
        except (DBAPIError, OSError):
            await self._drop()
            return False
        return True

    async def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(DBAPIError, OSError):
            await self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
        await self._drop()

    async def _drop(self) -> None:
        """Discard the lease connection: never return it to the pool, it may still hold the lock."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.invalidate()
            finally:
                await conn.close()


class RowLease:
    """A row ``(name, holder, expires_at)``; the holder renews well before expiry."""

    def __init__(self, db: Database, name: str, ttl: float = 10.0) -> None:
        self._db = db
        self._name = name
        self._ttl_ms = int(ttl * 1000)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"

    async def acquire(self) -> bool:
        now = int(time.time() * 1000)
        async with self._db.transaction() as conn:
            row = (await conn.execute(select(leases).where(leases.c.name == self._name))).first()
            if row is not None and row.holder != self.holder and row.expires_at > now \
                    and not _process_gone(row.holder):
                return False
            await upsert(conn, leases, {"name": self._name, "holder": self.holder,
                                        "expires_at": now + self._ttl_ms}, ["name"])
            return True

    async def renew(self) -> bool:
        return await self.acquire()

    async def release(self) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                delete(leases).where(leases.c.name == self._name, leases.c.holder == self.holder)
            )


def _process_gone(holder: str) -> bool:
    """Whether ``holder`` (``host:pid:token``) names a process of this machine that no longer
    exists. A holder of another form or another host is taken to be alive."""
    host, _, rest = holder.partition(":")
    pid, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
