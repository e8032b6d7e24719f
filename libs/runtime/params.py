"""Checked request input shared by every service: ids, text filters, list cursors, dates.

Text and ids carry no control characters (tab and line breaks aside): NUL in
particular, which PostgreSQL can neither store nor compare, so a NUL reaching a
query would answer 500 there (and be accepted on SQLite).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, BeforeValidator, StringConstraints

from libs.runtime.documents import MAX_LIMIT, decode_cursor
from libs.runtime.errors import DomainError

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2100, 12, 31)
"""The dates the system accepts: business days of this century, nothing like 0 or 9999-12-31."""


def no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters such as U+0000")
    return value


def issued_cursor(value: str) -> str:
    """A list cursor as ``libs.runtime.documents`` gives them out: the base64 of a document id."""
    try:
        decode_cursor(value)
    except DomainError:
        raise ValueError("the cursor is not one this service gave out") from None
    return value


Clean = AfterValidator(no_control_characters)
_Text = Annotated[str, StringConstraints(max_length=200), Clean]
PathId = Annotated[_Text, Path()]
"""An id in the path: at most 200 characters, no control characters."""
QueryText = Annotated[_Text | None, Query()]
"""A text filter: at most 200 characters, no control characters."""
Cursor = Annotated[Annotated[str, StringConstraints(max_length=400), AfterValidator(issued_cursor)]
                   | None, Query()]
"""The opaque list cursor: only one this service gave out (422 naming ``query.cursor`` otherwise)."""


def _iso_day_text(value: Any) -> Any:
    """A date travels as ``YYYY-MM-DD`` text only: no numbers, timestamps or week dates."""
    if isinstance(value, date):  # built in code, not parsed from a request
        return value
    if not isinstance(value, str) or not _ISO_DAY.fullmatch(value):
        raise ValueError("expected a date as YYYY-MM-DD")
    return value


def _within_date_range(value: date) -> date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(f"the date must lie between {EARLIEST_DATE} and {LATEST_DATE}")
    return value


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


StrictDate = Annotated[date, BeforeValidator(_iso_day_text), AfterValidator(_within_date_range)]
"""A calendar date in HTTP input: ``YYYY-MM-DD`` between ``EARLIEST_DATE`` and ``LATEST_DATE`` (422 else)."""
MaybeDate = Annotated[StrictDate | None, BeforeValidator(_blank_is_none)]
"""An optional date (blank counts as absent); for a query parameter with an alias:
``Annotated[MaybeDate, Query(alias="from")]``."""
QueryDate = Annotated[MaybeDate, Query()]
"""An optional date query parameter (``?as_of=`` left blank counts as absent)."""


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
"""A list's page size (``limit``): 1 to 200."""
