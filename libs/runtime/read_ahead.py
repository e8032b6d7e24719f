"""Documents a consumer batch reads ahead: those its events name, in one statement.

A reaction typically starts by reading a document or two by key (a copy of another
service's order, invoice or partner), one round trip each, event after event. The
batch's events are decoded before the first handler runs (``BatchWork.events``), so
the first reaction that asks for such a document can read those of every event of
the batch at once (``documents.get_many``). The batch's own writes of them go through
``kept``, so a later reaction sees what an earlier one wrote, as it would have read it.

Only for documents that nobody else writes while the batch runs: those written by
the reactions to one stream's events (a stream's events are handled one at a time,
in one consumer), or whose reader would accept the order of two streams' events
either way. Outside a consumer batch (a command, a test calling a handler) a
document is read when asked for, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from libs.events.base import DomainEvent
from libs.runtime import documents
from libs.runtime.commands import Unit

Key = documents.Key


class ReadAhead:
    """Documents by key, read for the whole batch at the first ask.

    ``named(event)``: the keys of the documents a reaction to ``event`` will read.
    """

    def __init__(self, name: str, named: Callable[[DomainEvent], Iterable[Key]]) -> None:
        self._key = f"{name}:read-ahead"
        self._named = named

    def _known(self, unit: Unit) -> dict[Key, dict[str, Any] | None] | None:
        work = unit.delivery.work if unit.delivery is not None else None
        return work.shared(self._key, dict) if work is not None else None

    async def get(self, unit: Unit, kind: str, doc_id: str) -> dict[str, Any] | None:
        """The document as this reaction sees it (``None``: there is none)."""
        known = self._known(unit)
        if known is None:
            return await documents.get(unit.conn, kind, doc_id)
        key = (kind, doc_id)
        if key not in known:
            assert unit.delivery is not None and unit.delivery.work is not None
            wanted = {key} | {named for event in unit.delivery.work.events
                              for named in self._named(event)} - known.keys()
            found = await documents.get_many(unit.conn, wanted)
            known.update({wanted_key: found.get(wanted_key) for wanted_key in wanted})
        return known[key]

    def kept(self, unit: Unit, kind: str, doc_id: str, body: dict[str, Any]) -> None:
        """``body`` was just written (``documents.put``): later reactions of the batch see it."""
        known = self._known(unit)
        if known is not None:
            known[(kind, doc_id)] = body
