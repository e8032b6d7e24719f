"""A consumer's guard read costs the batch's streams, not the consumer's history (PostgreSQL).

asyncpg prepares the guard once per connection, so PostgreSQL plans it for any values (a
generic plan); on tables not analysed yet (a new schema) that plan once read every stream
head of the consumer. Measured with ``EXPLAIN (ANALYZE, BUFFERS)`` of the generic plan.
"""

from __future__ import annotations

import json
from typing import Any

from libs.messaging import dlq
from libs.messaging.inbox import _GUARD_PG, read_guard
from libs.store.database import Database
from libs.store.sql import driver_of

HEADS = 20_000


def _buffers(plan: dict[str, Any]) -> int:
    return int(plan["Shared Hit Blocks"]) + int(plan.get("Shared Read Blocks", 0))


async def test_the_guard_searches_each_stream_whatever_the_statistics(pg_db: Database) -> None:
    async with pg_db.transaction() as conn:
        driver = await driver_of(conn)  # in the transaction: SET LOCAL holds until its end
        await driver.execute(
            "INSERT INTO stream_heads (consumer, stream_id, version) "
            f"SELECT 'c', 'order-' || n, 3 FROM generate_series(1, {HEADS}) AS n")
        await driver.execute(f"PREPARE guard_generic(text, text[], text[], uuid[]) AS {_GUARD_PG.postgresql}")
        await driver.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        unresolved = ", ".join(f"'{status}'" for status in dlq.UNRESOLVED)
        answer = await driver.fetchval(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE guard_generic("
            f"'c', ARRAY['order-7', 'order-700', 'order-7000', 'order-none'], ARRAY[{unresolved}], "
            "ARRAY[]::uuid[])")
        [explained] = json.loads(answer) if isinstance(answer, str) else answer
        await driver.execute("DEALLOCATE guard_generic")
        # four primary-key searches in each table: a few buffers each; the whole consumer's
        # heads are about a hundred
        assert _buffers(explained["Plan"]) < 40, explained
        guard = await read_guard(conn, "c", ["order-7", "order-700", "order-7000", "order-none"])
    assert guard.heads == {"order-7": 3, "order-700": 3, "order-7000": 3}
