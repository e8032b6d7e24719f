"""SQLite's lease row: a holder whose process is gone frees the lease at once, a live one keeps it."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from libs.messaging.lease import RowLease, lease_for
from libs.store.schema import leases
from libs.store.sql import upsert
from tests.conftest import empty_database


@pytest.fixture
async def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    async for database in empty_database("sqlite", tmp_path / "store.db"):
        yield database


async def _held_by(db, holder: str) -> None:  # type: ignore[no-untyped-def]
    async with db.transaction() as conn:
        await upsert(conn, leases, {"name": "relay:x", "holder": holder,
                                    "expires_at": int(time.time() * 1000) + 600_000}, ["name"])


async def test_a_lease_of_a_process_that_is_gone_is_taken_at_once(db) -> None:  # type: ignore[no-untyped-def]
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    mine = lease_for(db, "relay:x", ttl=600)
    assert isinstance(mine, RowLease)
    host = mine.holder.split(":", 1)[0]
    await _held_by(db, f"{host}:{dead.pid}:crashed")
    assert await mine.acquire()


async def test_a_live_holder_and_one_of_another_host_keep_their_lease(db) -> None:  # type: ignore[no-untyped-def]
    alive = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(60)")
    try:
        mine = lease_for(db, "relay:x", ttl=600)
        host = mine.holder.split(":", 1)[0]
        for holder in (f"{host}:{alive.pid}:running", f"elsewhere-{host}:1:remote", "legacyholder"):
            await _held_by(db, holder)
            assert not await mine.acquire(), holder
    finally:
        alive.kill()
        await alive.wait()
