"""Checked request parameters shared by every service: ids, text filters, list cursors.

Text and ids carry no control characters (tab and line breaks aside): NUL in
particular, which PostgreSQL can neither store nor compare, so a NUL reaching a
query would answer 500 there (and be accepted on SQLite).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, StringConstraints

from libs.runtime.documents import decode_cursor
from libs.runtime.errors import DomainError

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


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
