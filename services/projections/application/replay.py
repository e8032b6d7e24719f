"""Rebuild the read models from the archive (the read models are a cache of it).

The archive is read a page at a time (keyset cursor on ``received_seq``), only
the columns a fold reads (``archive.Archived``); each page is decoded (only the
types a projector folds, without validating again what was validated when it
was archived: ``EventRegistry.decode_stored``), its documents are read in one
go, folded in memory by the same projectors the live consumer runs, and the
changed documents are written in one multi-row upsert. Nothing is kept from one
page to the next but the cursor, so memory does not grow with the archive.

All of it is one transaction: readers see the old read models until the
rebuild commits, then the new ones, never a half-rebuilt set. On PostgreSQL
the rebuild first takes a SHARE lock on the archive, so the live consumer
(which archives each event before folding it) waits for the rebuild instead
of folding into documents the rebuild is rewriting; reads are not blocked.
SQLite has one writer at a time anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from libs.events.registry import EventRegistry
from libs.runtime.documents import Documents
from libs.runtime.rebuild import collecting_between_pages
from libs.store.database import Database
from services.projections.application import archive, documents
from services.projections.application.archive import Archived
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
        with collecting_between_pages() as between_pages:
            while rows := await archive.page_to_fold(conn, after, PAGE):
                await _fold(docs, registry, rows)
                count += len(rows)
                after = rows[-1][0]
                progress(len(rows))
                between_pages()
    return count


async def _fold(docs: Documents, registry: EventRegistry, rows: Sequence[Sequence[Any]]) -> None:
    """Fold one page of the archive into ``docs`` and write what changed."""
    page = [(stamp, registry.decode_stored(stamp.event_type, stamp.schema_version, stamp.data))
            for stamp in map(Archived._make, (row for row in rows if row[1] in PROJECTORS))]
    await docs.load(keys_of(event for _, event in page))
    for stamp, event in page:
        await project(docs, stamp, event)
    await docs.flush()
    docs.forget()
