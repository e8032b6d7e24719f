"""A task cancelled in the middle of a statement stops, even under ``except Exception``.

The consumer splits a failed batch under ``except Exception``. Cancelled while its
statement ran on PostgreSQL, the rollback on the way out raised ``PendingRollbackError``
in place of the ``CancelledError``, and the consumer took it for a failed batch and went
on: a shutdown never finished.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from libs.store.database import Database


async def test_a_cancelled_statement_ends_the_task_cancelled(pg_db: Database) -> None:
    started, swallowed = asyncio.Event(), []

    async def works_under_a_broad_except() -> None:
        try:
            async with pg_db.transaction() as conn:
                started.set()
                await conn.execute(text("SELECT pg_sleep(30)"))
        except Exception as error:  # what a batch splitter does
            swallowed.append(error)

    task = asyncio.create_task(works_under_a_broad_except())
    await started.wait()
    await asyncio.sleep(0.2)  # the statement is on the server
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10)
    assert done, "the task did not stop within 10 s of its cancellation"
    assert task.cancelled(), f"the cancellation was taken for an error: {swallowed!r}"
    async with pg_db.read() as conn:  # the pool is still usable
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
