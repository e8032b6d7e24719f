"""SQLite statements run on the event loop, but a writer waiting for another process's lock
waits off it: the loop keeps serving, and the write lands once the lock is free."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sqlalchemy import text

from libs.store.database import Database


async def test_a_write_waits_for_another_process_lock_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "svc.db"
    db = Database(f"sqlite:///{path}")
    try:
        async with db.transaction() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process's writer holds the file's lock

        async def write() -> None:
            async with db.transaction() as conn:
                await conn.execute(text("INSERT INTO t VALUES (1)"))

        writer = asyncio.create_task(write())
        ticks = 0
        while ticks < 20:  # the loop keeps running while the writer waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not writer.done()
        async with db.read() as conn:  # and readers are served meanwhile
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
        holder.execute("COMMIT")
        holder.close()
        await asyncio.wait_for(writer, 30)
        async with db.read() as conn:
            assert (await conn.execute(text("SELECT x FROM t"))).scalars().all() == [1]
        async with db.transaction() as conn:  # the lock free again: taken at once, and works
            await conn.execute(text("INSERT INTO t VALUES (2)"))
        async with db.read() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 2
    finally:
        await db.dispose()
