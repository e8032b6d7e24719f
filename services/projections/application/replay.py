"""Rebuild the read models from the archive (the read models are a cache of it).

The archive is read a page at a time (keyset cursor on ``received_seq``), only
the columns a fold reads (``archive.Archived``); each page is decoded (only the
types a projector folds, without validating again what was validated when it
was archived: ``EventRegistry.decode_stored``), its documents are read in one
go, folded in memory by the same projectors the live consumer runs, and the
changed documents are written in one multi-row upsert. Nothing is kept from one
page to the next but the cursor, so memory does not grow with the archive.

A page's upsert runs while Python decodes the next page (PostgreSQL works on one
core while Python works on the other; on SQLite, on the connection's thread):
the next page is read before the upsert is sent, and its documents are read only
once the upsert is done (they may be among them). At most two pages are held.

All of it is one transaction: readers see the old read models until the
rebuild commits, then the new ones, never a half-rebuilt set. On PostgreSQL
the rebuild first takes a SHARE lock on the archive, so the live consumer
(which archives each event before folding it) waits for the rebuild instead
of folding into documents the rebuild is rewriting; reads are not blocked.
SQLite has one writer at a time anyway.
"""

from __future__ import annotations

import asyncio
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
    count = 0
    async with db.transaction() as conn:
        await archive.keep_writers_out(conn)
        total(await archive.count(conn))
        await documents.forget_all(conn)
        docs = Documents(conn, lock=False)
        writing: asyncio.Future[int] | None = None
        try:
            with collecting_between_pages() as between_pages:
                rows = await archive.page_to_fold(conn, 0, PAGE)
                while rows:
                    folded, after = len(rows), rows[-1][0]
                    page = _decode(registry, rows)
                    del rows
                    if writing is not None:  # the previous page's documents, written meanwhile
                        await writing
                    await _fold(docs, page)
                    del page  # freed before the next page is read and decoded: two pages of
                    # events alive at once cost the rebuild a quarter more CPU
                    rows = await archive.page_to_fold(conn, after, PAGE)
                    writing = asyncio.ensure_future(docs.flush())
                    await asyncio.sleep(0)  # on the wire before the next page decodes
                    docs.forget()  # the write took the changed documents at its start
                    count += folded
                    progress(folded)
                    between_pages()
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():  # the rebuild failed meanwhile:
                await asyncio.wait([writing])  # the connection is free again for the rollback
    return count


def _decode(registry: EventRegistry, rows: Sequence[Sequence[Any]]) -> list[tuple[Archived, Any]]:
    """The page's rows of the types a projector folds, with their events (decoded without
    validating again what was validated when it was archived)."""
    return [(stamp, registry.decode_stored(stamp.event_type, stamp.schema_version, stamp.data))
            for stamp in map(Archived._make, (row for row in rows if row[1] in PROJECTORS))]


async def _fold(docs: Documents, page: list[tuple[Archived, Any]]) -> None:
    """Fold one decoded page into ``docs`` (its documents read in one go); not written yet."""
    await docs.load(keys_of(event for _, event in page))
    for stamp, event in page:
        await project(docs, stamp, event)
