"""A consumer's guard read costs the batch's streams and events, not the consumer's history (PostgreSQL).

asyncpg prepares the guard once per connection, so PostgreSQL plans it for any values (a
generic plan); on tables not analysed yet (a new schema) that plan once read every stream
head of the consumer. Measured with ``EXPLAIN (ANALYZE, BUFFERS)`` of the generic plan.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from libs.messaging import dlq
from libs.messaging.inbox import _GUARD_PG, read_guard
from libs.store.database import Database
from libs.store.sql import driver_of

HEADS = 20_000


def _buffers(plan: dict[str, Any]) -> int:
    return int(plan["Shared Hit Blocks"]) + int(plan.get("Shared Read Blocks", 0))


async def _fill(driver: Any, first: int, last: int) -> None:
    await driver.execute("INSERT INTO stream_heads (consumer, stream_id, version) "
                         f"SELECT 'c', 'order-' || n, 3 FROM generate_series({first}, {last}) AS n")
    await driver.execute("INSERT INTO inbox (consumer, event_id, processed_at) "
                         f"SELECT 'c', gen_random_uuid(), 'then' FROM generate_series({first}, {last})")


async def test_the_guard_searches_each_stream_and_event_whatever_the_statistics(pg_db: Database) -> None:
    """The plan is made while the tables are small (a service's first batches) and kept as they
    grow: nothing re-plans a prepared statement until autovacuum analyses the tables."""
    unresolved = ", ".join(f"'{status}'" for status in dlq.UNRESOLVED)
    async with pg_db.transaction() as conn:
        driver = await driver_of(conn)  # in the transaction: SET LOCAL holds until its end
        await _fill(driver, 1, 300)
        seen = await driver.fetchval("SELECT event_id FROM inbox WHERE consumer = 'c' LIMIT 1")
        await driver.execute(f"PREPARE guard_generic(text, text[], text[], uuid[]) AS {_GUARD_PG.postgresql}")
        await driver.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        execute = ("EXECUTE guard_generic('c', ARRAY['order-7', 'order-70', 'order-270', 'order-none'], "
                   f"ARRAY[{unresolved}], ARRAY['{seen}', '{uuid.uuid4()}']::uuid[])")
        await driver.execute(execute)  # the generic plan, made now and kept
        await _fill(driver, 301, HEADS)
        answer = await driver.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {execute}")
        [explained] = json.loads(answer) if isinstance(answer, str) else answer
        await driver.execute("DEALLOCATE guard_generic")
        # four primary-key searches in each table, two in the inbox: a few buffers each; the
        # whole consumer's heads or inbox are hundreds
        assert _buffers(explained["Plan"]) < 60, explained
        guard = await read_guard(conn, "c", ["order-7", "order-70", "order-270", "order-none"],
                                 [seen, uuid.uuid4()])
    assert guard.heads == {"order-7": 3, "order-70": 3, "order-270": 3}
    assert guard.in_inbox == {seen}
