"""Resource identifiers: a readable prefix and 80 random bits (``ord_3f9c…``).

80 bits keep the chance of two ids colliding below one in a trillion even
after a billion of them; a collision would silently merge two records.
"""

from __future__ import annotations

import uuid

RANDOM_HEX_DIGITS = 20


def new_id(prefix: str, source: uuid.UUID | None = None) -> str:
    """A new id; from ``source`` (e.g. a deterministic event id) when given, so replays agree."""
    return f"{prefix}_{(source or uuid.uuid4()).hex[:RANDOM_HEX_DIGITS]}"
