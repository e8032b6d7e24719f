"""The projections' own migration upgrades, downgrades and upgrades again, on both databases."""

from __future__ import annotations

from sqlalchemy import inspect

from libs.store.database import Database
from libs.store.migrate import run_alembic
from services.projections.app import MIGRATIONS


async def _archive_indexes(db: Database) -> set[str] | None:
    def read(connection) -> set[str] | None:  # type: ignore[no-untyped-def]
        inspector = inspect(connection)
        if "archive" not in inspector.get_table_names():
            return None
        return {index["name"] for index in inspector.get_indexes("archive")}

    async with db.engine.connect() as conn:
        return await conn.run_sync(read)


async def test_archive_migration_stairway(db: Database) -> None:
    await run_alembic(db, "upgrade", "heads", [MIGRATIONS])
    assert await _archive_indexes(db) >= {"ix_archive_correlation", "ix_archive_order",  # type: ignore[operator]
                                          "ix_archive_partner", "ix_archive_invoice",
                                          "ix_archive_stream"}
    await run_alembic(db, "downgrade", "projections@base", [MIGRATIONS])
    assert await _archive_indexes(db) is None
    await run_alembic(db, "upgrade", "heads", [MIGRATIONS])
    assert await _archive_indexes(db) is not None
