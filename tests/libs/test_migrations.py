"""Stairway: every revision upgrades, downgrades and upgrades again, on both databases."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from libs.store.database import Database
from libs.store.migrate import alembic_config, run_alembic


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_stairway(db: Database) -> None:
    await run_alembic(db, "downgrade", "base")
    assert "events" not in await _tables(db)
    script = ScriptDirectory.from_config(alembic_config())
    revisions = list(reversed(list(script.walk_revisions())))
    assert revisions, "no revisions found"
    for revision in revisions:
        await run_alembic(db, "upgrade", revision.revision)
        await run_alembic(db, "downgrade", revision.down_revision or "base")
        await run_alembic(db, "upgrade", revision.revision)
    assert {"events", "event_seals", "relay_state", "inbox", "dead_letters"} <= await _tables(db)


async def test_replicas_starting_together_migrate_one_after_the_other() -> None:
    """Four replicas of a service migrate one fresh PostgreSQL schema at once: all succeed,
    the schema ends at every head once (the advisory lock serialises them)."""
    import asyncio
    import uuid

    from libs.store.migrate import migrate
    from services.orders.app import SPEC
    from tests.conftest import PG_URL, _pg_reachable, integration_unavailable

    problem = await _pg_reachable()
    if problem:
        integration_unavailable(problem)
    schema = f"t_replicas_{uuid.uuid4().hex[:8]}"
    replicas = [Database(PG_URL, schema=schema) for _ in range(4)]
    alone = Database(PG_URL, schema=f"{schema}_alone")
    try:
        await asyncio.wait_for(asyncio.gather(*(migrate(db, [SPEC.migrations]) for db in replicas)), 120)
        await migrate(alone, [SPEC.migrations])
        assert await _revisions(replicas[0]) == await _revisions(alone) != set()
        assert await _tables(replicas[0]) == await _tables(alone)
    finally:
        for db in (*replicas, alone):
            async with db.engine.begin() as conn:
                await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{db.schema}" CASCADE')
            await db.dispose()


async def _revisions(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        rows = await conn.exec_driver_sql(f'SELECT version_num FROM "{db.schema}".alembic_version')
        return {row[0] for row in rows}
