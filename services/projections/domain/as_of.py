"""The money documents as the books stood at the end of a day.

The books date money as the credit service's statement does, by the business
date each fact carries: an invoice or debit note by its ``issued_on``, what
settled it by the day of each settlement (a backdated receipt counts on its
``received_on``), a payment by ``received_on``, a credit note by ``issued_on``,
a write-off by ``written_off_on``. So a figure "as of" a day equals the one
the statement for that day shows (balance = its closing balance), whenever the
question is asked.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

Doc = dict[str, Any]


def _by(day: str | None, limit: date) -> bool:
    return day is not None and date.fromisoformat(day) <= limit


def receivable_at(doc: Doc, day: date) -> Doc | None:
    """An invoice or debit note as it stood at the end of ``day`` (None: not issued yet)."""
    if doc["total_minor"] is None or not _by(doc["issued_on"], day):
        return None
    settlements = {key: s for key, s in doc["settlements"].items() if _by(s["on"], day)}
    written_off = [s for s in settlements.values() if s["kind"] == "write_off"]
    return {**doc, "settlements": settlements,
            "paid_on": doc["paid_on"] if _by(doc["paid_on"], day) else None,
            "written_off_minor": sum(s["amount_minor"] for s in written_off),
            "written_off_on": max((s["on"] for s in written_off), default=None)}


def receivables_at(docs: Iterable[Doc], day: date) -> list[Doc]:
    return [trimmed for doc in docs if (trimmed := receivable_at(doc, day)) is not None]


def dated_at(docs: Iterable[Doc], field: str, day: date) -> list[Doc]:
    """The documents whose ``field`` (a business date) is ``day`` or earlier."""
    return [doc for doc in docs if _by(doc.get(field), day)]
