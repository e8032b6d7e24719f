"""Rebuild the read models from the archive (the read models are a cache of it)."""

from __future__ import annotations

from libs.events.registry import EventRegistry
from libs.store.database import Database
from services.projections.application import archive, documents
from services.projections.application.projectors import project

BATCH = 1000


async def rebuild_read_models(db: Database, registry: EventRegistry) -> int:
    """Forget every read model, then fold the archive again in arrival order; returns the count."""
    count, after = 0, 0
    async with db.transaction() as conn:
        await documents.forget_all(conn)
        while rows := await archive.page_events(conn, service=None, stream_id=None,
                                                correlation_id=None, after=after, limit=BATCH):
            for row in rows:
                envelope = archive.envelope_of(row)
                await project(conn, envelope, registry.decode(envelope))
                count += 1
            after = rows[-1][0]
    return count
