"""SQLite group commit: write transactions queued behind each other share one ``COMMIT``, and
none of them returns before that ``COMMIT`` made its work durable.

Each check reads with a plain ``sqlite3`` connection of its own, as another process would:
what it sees is what a crash right then would leave.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from libs.store.database import GROUP_COMMIT_MAX, Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'svc.db'}")
    async with database.transaction() as conn:
        await conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        await conn.execute(text(
            "CREATE TABLE t (x INTEGER PRIMARY KEY, parent INTEGER "
            "REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"))
    yield database
    await database.dispose()


def _durable(db: Database) -> set[int]:
    """The rows another process sees: committed ones only."""
    other = sqlite3.connect(str(db.url.database))
    try:
        return {x for (x,) in other.execute("SELECT x FROM t")}
    finally:
        other.close()


def _count_commits(db: Database) -> list[int]:
    commits: list[int] = []
    event.listen(db.engine.sync_engine, "commit", lambda _conn: commits.append(1))
    return commits


async def _insert(db: Database, x: int, *, hold: asyncio.Event | None = None,
                  parent: int | None = None) -> set[int]:
    """Insert ``x``; answer what another process sees the moment the transaction returns."""
    async with db.transaction() as conn:
        if hold is not None:
            await hold.wait()
        await conn.execute(text("INSERT INTO t (x, parent) VALUES (:x, :p)"), {"x": x, "p": parent})
    return _durable(db)


async def test_queued_transactions_share_a_commit_and_return_only_once_it_is_durable(db: Database) -> None:
    commits = _count_commits(db)
    hold = asyncio.Event()
    first = asyncio.create_task(_insert(db, 0, hold=hold))  # holds the lock while the rest queue
    await asyncio.sleep(0.05)
    rest = [asyncio.create_task(_insert(db, x)) for x in range(1, 20)]
    await asyncio.sleep(0.05)
    hold.set()
    seen = await asyncio.gather(first, *rest)

    for x, durable in enumerate(seen):  # each saw itself committed when it returned
        assert x in durable, (x, sorted(durable))
    assert _durable(db) == set(range(20))
    # 20 transactions in groups of at most GROUP_COMMIT_MAX: 3 commits, not 20.
    assert len(commits) == -(-20 // GROUP_COMMIT_MAX)


async def test_a_failed_member_is_undone_alone(db: Database) -> None:
    hold = asyncio.Event()

    async def failing() -> None:
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO t (x) VALUES (100)"))
            raise RuntimeError("the command refused")

    first = asyncio.create_task(_insert(db, 1, hold=hold))
    await asyncio.sleep(0.05)
    middle = asyncio.create_task(failing())
    last = asyncio.create_task(_insert(db, 2))
    await asyncio.sleep(0.05)
    hold.set()
    assert 1 in await first and 2 in await last
    with pytest.raises(RuntimeError):
        await middle
    assert _durable(db) == {1, 2}


async def test_a_member_whose_statement_fails_is_undone_alone(db: Database) -> None:
    """A failed statement (here a duplicate key) leaves SQLite's transaction open: the group
    goes on without the member's work."""
    hold = asyncio.Event()

    async def duplicate() -> None:
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO t (x) VALUES (50)"))
            await conn.execute(text("INSERT INTO t (x) VALUES (1)"))  # 1 is the first member's

    first = asyncio.create_task(_insert(db, 1, hold=hold))
    await asyncio.sleep(0.05)
    middle = asyncio.create_task(duplicate())
    last = asyncio.create_task(_insert(db, 2))
    await asyncio.sleep(0.05)
    hold.set()
    assert 1 in await first and 2 in await last
    with pytest.raises(IntegrityError):
        await middle
    assert _durable(db) == {1, 2}


async def test_a_failed_commit_fails_every_member_and_keeps_nothing(db: Database) -> None:
    """A deferred foreign key fails only at ``COMMIT``: the whole group is refused, so no
    member may have answered as if its work were kept."""
    hold = asyncio.Event()
    first = asyncio.create_task(_insert(db, 1, hold=hold))
    await asyncio.sleep(0.05)
    dangling = asyncio.create_task(_insert(db, 2, parent=999))  # no parent 999: COMMIT fails
    last = asyncio.create_task(_insert(db, 3))
    await asyncio.sleep(0.05)
    hold.set()
    outcomes: list[Any] = await asyncio.gather(first, dangling, last, return_exceptions=True)

    assert all(isinstance(outcome, IntegrityError) for outcome in outcomes), outcomes
    assert _durable(db) == set()
    assert 4 in await _insert(db, 4)  # and the next transaction starts afresh


async def test_a_member_cancelled_while_the_group_commits_leaves_the_others_committed(db: Database) -> None:
    hold = asyncio.Event()
    first = asyncio.create_task(_insert(db, 1, hold=hold))
    await asyncio.sleep(0.05)
    queued = asyncio.create_task(_insert(db, 2))
    await asyncio.sleep(0.05)
    queued.cancel()  # gives up while waiting for the lock
    hold.set()
    assert 1 in await first
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert _durable(db) == {1}
