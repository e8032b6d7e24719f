"""Run a service's Alembic migrations: the backbone branch plus the service's own, if any.

Called at service start (never at import time) and by tests. Each service's
revisions live in its ``migrations/versions`` folder and depend on the
backbone; all of them share the service's one version table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from libs.store.database import Database

BACKBONE_VERSIONS = Path(__file__).parent / "migrations" / "versions"


def alembic_config(extra_locations: Sequence[Path] = ()) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    locations = [str(BACKBONE_VERSIONS), *(str(p) for p in extra_locations)]
    config.set_main_option("version_locations", " ".join(locations))
    config.set_main_option("path_separator", "space")
    return config


async def run_alembic(
    db: Database, action: str, target: str, extra_locations: Sequence[Path] = ()
) -> None:
    """``action`` is ``upgrade`` or ``downgrade``; ``target`` a revision like ``heads`` or ``-1``.

    On PostgreSQL the whole run holds an advisory lock named after the schema, so replicas
    that start together migrate one after the other: the first does the work, the others
    find the schema at its head. (Without it, two replicas racing through the same revision
    fail on a ``UniqueViolation`` in the catalog.)
    """
    config = alembic_config(extra_locations)

    def _run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        getattr(command, action)(config, target)

    async with _migration_lock(db):
        await db.create_schema()
        async with db.engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()


@asynccontextmanager
async def _migration_lock(db: Database) -> AsyncIterator[None]:
    """One migration at a time per PostgreSQL schema, across processes (SQLite: one writer anyway)."""
    if not db.schema:
        yield
        return
    plain = create_async_engine(db.url, poolclass=NullPool)
    try:
        async with plain.connect() as conn:
            key = {"name": f"o2c-migrate:{db.schema}"}
            await conn.execute(text("SELECT pg_advisory_lock(hashtext(:name))"), key)
            try:
                yield
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(hashtext(:name))"), key)
    finally:
        await plain.dispose()


async def migrate(db: Database, extra_locations: Sequence[Path] = ()) -> None:
    """Bring the database to the newest revision of every branch.

    A database already at every head (each restart of a service) is left alone after one
    read of its version table: running Alembic to find nothing to do costs a tenth of a
    second (its environment, the advisory lock on PostgreSQL).
    """
    if await _revisions(db) == _heads(tuple(str(p) for p in extra_locations)):
        return
    await run_alembic(db, "upgrade", "heads", extra_locations)


@cache
def _heads(extra_locations: tuple[str, ...]) -> frozenset[str]:
    """The head revisions of the backbone plus these branches (read once per process)."""
    config = alembic_config([Path(p) for p in extra_locations])
    return frozenset(ScriptDirectory.from_config(config).get_heads())


async def _revisions(db: Database) -> frozenset[str]:
    """The revisions the database is at (none when it was never migrated)."""
    try:
        async with db.read() as conn:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return frozenset(row[0] for row in rows)
    except DBAPIError:  # no version table (or no schema) yet
        return frozenset()


def fill_document_refs(connection: Connection, fields: dict[str, str]) -> None:
    """In a service's migration: set ``documents.ref_id`` of each kind from a field of its body.

    ``fields`` maps a document kind to the body field its lists filter by (for example
    ``{"shipment": "order_id"}``); documents written since carry ``ref_id`` already.
    """
    postgres = connection.dialect.name == "postgresql"
    for kind, field in fields.items():
        if not field.isidentifier():
            raise ValueError(f"not a field name: {field!r}")
        value = f"(body::json ->> '{field}')" if postgres else f"json_extract(body, '$.{field}')"
        connection.execute(
            text(f"UPDATE documents SET ref_id = {value} WHERE kind = :kind AND ref_id IS NULL"),
            {"kind": kind})


def clear_document_refs(connection: Connection, kinds: Sequence[str]) -> None:
    """The downgrade of ``fill_document_refs``."""
    for kind in kinds:
        connection.execute(text("UPDATE documents SET ref_id = NULL WHERE kind = :kind"),
                           {"kind": kind})
