"""Canonical JSON: the one byte representation of an event.

Keys are sorted and there is no insignificant whitespace, so the same event
always serialises to the same bytes. Those bytes are what the store hashes and
what travels on the wire, which is what makes the hash chain reproducible.
"""

from __future__ import annotations

from typing import Any

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` to canonical JSON bytes (sorted keys, compact, UTC as ``Z``)."""
    return orjson.dumps(value, option=_OPTIONS)


def parse_json(raw: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON bytes (or text) into Python values."""
    return orjson.loads(raw)
