"""Rebuild the read models from the archive (the read models are a cache of it).

The archive is read a page at a time (keyset cursor on ``received_seq``); each
page is decoded (only the types a projector folds), its documents are read in
one go, folded in memory by the same projectors the live consumer runs, and
the changed documents are written in one multi-row upsert. Nothing is kept
from one page to the next but the cursor, so memory does not grow with the
archive.

All of it is one transaction: readers see the old read models until the
rebuild commits, then the new ones, never a half-rebuilt set. On PostgreSQL
the rebuild first takes a SHARE lock on the archive, so the live consumer
(which archives each event before folding it) waits for the rebuild instead
of folding into documents the rebuild is rewriting; reads are not blocked.
SQLite has one writer at a time anyway.
"""

from __future__ import annotations

from collections.abc import Callable

from libs.events.registry import EventRegistry
from libs.runtime.documents import Documents
from libs.store.database import Database
from services.projections.application import archive, documents
from services.projections.application.projectors import PROJECTORS, keys_of, project

PAGE = 5000


def _nothing(events: int) -> None:
    return None


async def rebuild_read_models(db: Database, registry: EventRegistry, *,
                              progress: Callable[[int], None] = _nothing,
                              total: Callable[[int], None] = _nothing) -> int:
    """Forget every read model, then fold the archive again in arrival order; returns the count.

    ``total`` is told how many events the archive holds, ``progress`` how many each page folded.
    """
    count, after = 0, 0
    async with db.transaction() as conn:
        await archive.keep_writers_out(conn)
        total(await archive.count(conn))
        await documents.forget_all(conn)
        docs = Documents(conn, lock=False)
        while rows := await archive.page_all(conn, after, PAGE):
            page = [(envelope, registry.decode(envelope)) for envelope in
                    map(archive.envelope_of, (row for row in rows if row[3] in PROJECTORS))]
            await docs.load(keys_of(event for _, event in page))
            for envelope, event in page:
                await project(docs, envelope, event)
            await docs.flush()
            docs.forget()
            count += len(rows)
            after = rows[-1][0]
            progress(len(rows))
    return count
