"""What one ``POST /v1/orders`` costs in statements: the budget ``docs/benchmarks.md`` records.

Every statement is a round trip to PostgreSQL (and SQLAlchemy's work per statement is
most of the service's own CPU per request), so a change that adds one should be seen.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import event

from tests.orders.support import Publisher, add_product, on_day, order_body, publish_prices
from tests.service_support import RunningService

PLACEMENT = ["INSERT INTO idempotency_keys", "SELECT kind, id, body FROM documents", "INSERT INTO events",
             "INSERT INTO documents", "UPDATE idempotency_keys"]
"""Claim the key; read the partner copy, the products and the tier's price list; append;
write the order's document; fill in the key's answer (plus BEGIN and COMMIT)."""

PG_PLACEMENT = ["WITH o2c_deferred AS (INSERT INTO idempotency_keys", "INSERT INTO events",
                "WITH o2c_deferred AS (INSERT INTO documents"]
"""On PostgreSQL the claim rides with the read, and the order's document with the key's
answer (deferrable writes, ``libs.store.sql.Statement``): three round trips besides BEGIN
and COMMIT."""


async def test_a_keyed_placement_runs_five_statements_three_on_postgres_a_replay_one_more(
        svc: RunningService, publisher: Publisher) -> None:
    await publisher.partner("p1", tier="gold", categories=("pumps",))
    await add_product(svc, "P-1", 999)
    await add_product(svc, "P-2", 1999)
    await publish_prices(svc, "gold", "2026-01-01", 1250)
    on_day(svc, date(2026, 4, 1))
    headers = {**await publisher.key("partner", "p1"), "Idempotency-Key": uuid.uuid4().hex}
    sent: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Transaction control is left out: BEGIN, and on SQLite the savepoint each write
        # transaction takes inside a group commit; pg_notify: the relay runs elsewhere.
        if not statement.startswith(("BEGIN", "SAVEPOINT", "RELEASE", "SELECT pg_notify")):
            sent.append(" ".join(statement.split()))

    engine = svc.ctx.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", remember)
    try:
        first = await svc.client.post("/v1/orders", json=order_body(("P-1", 1), ("P-2", 2)),
                                      headers=headers)
        placed, sent[:] = list(sent), []
        again = await svc.client.post("/v1/orders", json=order_body(("P-1", 1), ("P-2", 2)),
                                      headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", remember)

    assert first.status_code == 201 and first.json()["lines"][0]["unit_price_minor"] == 874
    postgres = svc.ctx.db.is_postgres
    assert _started_as(placed, PG_PLACEMENT if postgres else PLACEMENT), placed
    if postgres:
        assert "SELECT kind, id, body FROM documents" in placed[0], placed
        assert "UPDATE idempotency_keys" in placed[-1], placed
    assert (again.status_code, again.content) == (201, first.content)
    assert _started_as(sent, [*(PG_PLACEMENT if postgres else PLACEMENT), "SELECT request_sha256"]), sent


def _started_as(statements: list[str], heads: list[str]) -> bool:
    return len(statements) == len(heads) and all(
        statement.startswith(head) for statement, head in zip(statements, heads, strict=True))
