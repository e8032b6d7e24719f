"""A service's SQLite file, its ``-wal`` and its ``-shm`` are readable by their owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import text

from libs.store.database import Database


async def test_sqlite_files_are_created_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "svc" / "orders.db"
    previous = os.umask(0o022)
    try:
        db = Database(f"sqlite:///{path}")
        try:
            async with db.transaction() as conn:
                await conn.execute(text("CREATE TABLE t (x INTEGER)"))
                await conn.execute(text("INSERT INTO t VALUES (1)"))
            async with db.read() as conn:
                assert (await conn.execute(text("SELECT x FROM t"))).scalar_one() == 1
            files = [path, path.with_name("orders.db-wal"), path.with_name("orders.db-shm")]
            assert all(f.exists() for f in files), sorted(p.name for p in path.parent.iterdir())
            for file in files:
                assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
        finally:
            await db.dispose()
    finally:
        os.umask(previous)


async def test_an_existing_database_keeps_its_content(tmp_path: Path) -> None:
    path = tmp_path / "credit.db"
    first = Database(f"sqlite:///{path}")
    async with first.transaction() as conn:
        await conn.execute(text("CREATE TABLE t (x INTEGER)"))
    await first.dispose()
    again = Database(f"sqlite:///{path}")
    try:
        async with again.read() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
    finally:
        await again.dispose()
