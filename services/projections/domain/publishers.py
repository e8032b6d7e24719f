"""Which service published an event type, and the business ids an event's payload names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libs.events import CONTRACT_MODULES

PUBLISHER_OF: Mapping[str, str] = {
    cls.TYPE: module.__name__.rsplit(".", 1)[-1]
    for module in CONTRACT_MODULES
    for cls in module.EVENTS
}
"""Event type -> the publishing service (the module of ``libs.events`` that declares it)."""

EVENT_TYPES: tuple[str, ...] = tuple(PUBLISHER_OF)
"""Every published event type: projections archives them all."""

PUBLISHERS: tuple[str, ...] = tuple(dict.fromkeys(PUBLISHER_OF.values()))


def publisher_of(event_type: str, stream_type: str) -> str:
    """The publishing service of ``event_type`` (the stream type when the type is unknown)."""
    return PUBLISHER_OF.get(event_type, stream_type)


def named_id(payload: Mapping[str, Any], field: str) -> str | None:
    """``payload[field]`` when it is a non-empty string, else None."""
    value = payload.get(field)
    return value if isinstance(value, str) and value else None
