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
