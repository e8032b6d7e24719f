"""The base of every domain event and the metadata that travels with it.

A domain event is an immutable fact, named in the past tense. Its class states
its wire name (``TYPE``) and schema version (``VERSION``); the fields are the
payload. Identity (event id, stream, version, position) and causality
(correlation, causation, actor) live in the envelope, not in the payload.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    model_validator,
)

TOLERANT = {"tolerate_unknown_fields": True}
"""Validation context for reading events off the wire or the store (``EventRegistry.decode``)."""


class Strict(BaseModel):
    """Frozen and strict where we write (code and HTTP input reject unknown fields), tolerant where
    we read: validated with the :data:`TOLERANT` context, fields this code does not know yet are
    dropped, so a publisher may add an optional field without breaking an older consumer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="wrap")
    @classmethod
    def _drop_unknown(cls, data: Any, handler: ValidatorFunctionWrapHandler,
                      info: ValidationInfo) -> Any:
        if info.context and isinstance(data, dict) and info.context.get("tolerate_unknown_fields"):
            fields = cls.model_fields
            data = {key: value for key, value in data.items() if key in fields}
        return handler(data)


class DomainEvent(Strict):
    """An immutable fact. Subclasses set ``TYPE`` and, when they change shape, ``VERSION``."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    def payload(self) -> dict[str, Any]:
        """The JSON-ready payload (dates as ISO strings, decimals never occur: money is int)."""
        return self.model_dump(mode="json")


def new_id() -> uuid.UUID:
    """A fresh random identifier (UUID4)."""
    return uuid.uuid4()


@dataclass(frozen=True, slots=True)
class EventMetadata:
    """Who caused an append and within which conversation.

    ``correlation_id`` is shared by every event that follows from one external
    request (it flows from the placing HTTP call through every reaction);
    ``causation_id`` is the id of the command or event that directly caused it.
    """

    actor: str
    correlation_id: uuid.UUID = field(default_factory=new_id)
    causation_id: uuid.UUID | None = None

    def caused_by(self, event_id: uuid.UUID, actor: str | None = None) -> EventMetadata:
        """Metadata for events that react to the event ``event_id`` in the same conversation."""
        return EventMetadata(
            actor=actor or self.actor,
            correlation_id=self.correlation_id,
            causation_id=event_id,
        )


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, e.g. ``2026-11-24T22:23:39.123456Z``.

    Fixed width, so the text sorts in time order and hashes reproducibly.
    """
    if moment.tzinfo is not UTC:
        if moment.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        moment = moment.astimezone(UTC)
    # ``isoformat`` of a UTC moment ends in ``+00:00``: cut it for the ``Z``. About half the
    # CPU of ``strftime``, and every append, inbox row and document write stamps one.
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


def parse_timestamp(text: str) -> datetime:
    """Inverse of :func:`format_timestamp`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
