"""Event type registry and upcasting.

The registry maps wire names to the current event classes. A stored event of an
older schema version is read as the current one by running the upcasters
registered for each step (v1 -> v2 -> ... -> current), on the JSON payload,
before validation. Stored bytes are never rewritten: upcasting happens on read.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from libs.events.base import TOLERANT, DomainEvent
from libs.events.codec import parse_json
from libs.events.envelope import Envelope
from libs.events.stored import reader

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns the payload of version N of an event type into version N + 1."""


class UnknownEventType(LookupError):
    """The registry holds no class for this event type."""


class EventRegistry:
    """Wire name -> event class, plus the upcaster chain of each type."""

    def __init__(
        self,
        classes: Iterable[type[DomainEvent]],
        upcasters: Mapping[tuple[str, int], Upcaster] | None = None,
    ) -> None:
        self._classes: dict[str, type[DomainEvent]] = {}
        for cls in classes:
            if not cls.TYPE:
                raise ValueError(f"{cls.__name__} has no TYPE")
            if cls.TYPE in self._classes and self._classes[cls.TYPE] is not cls:
                raise ValueError(f"event type {cls.TYPE!r} registered twice")
            self._classes[cls.TYPE] = cls
        self._upcasters = dict(upcasters or {})
        for event_type, version in self._upcasters:
            target = self._classes.get(event_type)
            if target is None or version >= target.VERSION:
                raise ValueError(f"upcaster {event_type} v{version} has no newer class version")

    def __contains__(self, event_type: str) -> bool:
        return event_type in self._classes

    def class_for(self, event_type: str) -> type[DomainEvent]:
        try:
            return self._classes[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def has_upcaster(self, event_type: str, version: int) -> bool:
        """Whether version ``version`` of ``event_type`` can be brought one version up."""
        return (event_type, version) in self._upcasters

    def upcast(self, event_type: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
        """Bring ``payload`` from ``version`` up to the registered class's version."""
        target = self.class_for(event_type).VERSION
        while version < target:
            step = self._upcasters.get((event_type, version))
            if step is None:
                raise UnknownEventType(f"no upcaster for {event_type} v{version}")
            payload = step(payload)
            version += 1
        if version > target:
            raise UnknownEventType(f"{event_type} v{version} is newer than this code (v{target})")
        return payload

    def decode(self, envelope: Envelope) -> DomainEvent:
        """The typed, current-version event inside ``envelope``."""
        cls = self.class_for(envelope.event_type)
        payload = parse_json(envelope.data)
        return cls.model_validate(self.upcast(envelope.event_type, envelope.schema_version, payload),
                                  context=TOLERANT)

    def decode_stored(self, event_type: str, schema_version: int, data: str | bytes) -> DomainEvent:
        """The typed, current-version event of a payload this system validated before storing it
        (a rebuild reading its store or archive): ``decode``'s result, without validating again
        (``libs.events.stored``). A payload that does not fit is validated as ``decode`` does."""
        cls = self.class_for(event_type)
        payload = parse_json(data)
        if schema_version != cls.VERSION:
            payload = self.upcast(event_type, schema_version, payload)
        read = reader(cls)
        if read is not None:
            try:
                return typing.cast(DomainEvent, read(payload))
            except ValueError:  # NotTrusted, or a date that is not one
                pass
        return cls.model_validate(payload, context=TOLERANT)

    def merged(self, other: EventRegistry) -> EventRegistry:
        return EventRegistry(
            [*self._classes.values(), *other._classes.values()],
            {**self._upcasters, **other._upcasters},
        )
