"""The wire contract: event base, envelope, registry and one module per publishing service."""

from __future__ import annotations

from functools import cache
from types import ModuleType

from libs.events import credit, delivery, orders, partners, rebates
from libs.events.base import DomainEvent, EventMetadata
from libs.events.envelope import Envelope
from libs.events.registry import EventRegistry, Upcaster

CONTRACT_MODULES: tuple[ModuleType, ...] = (partners, orders, credit, delivery, rebates)
"""The event module of each publishing service."""


@cache
def default_registry() -> EventRegistry:
    """Every published event type, with each module's upcasters (``UPCASTERS``, if any)."""
    classes: list[type[DomainEvent]] = []
    upcasters: dict[tuple[str, int], Upcaster] = {}
    for module in CONTRACT_MODULES:
        classes.extend(module.EVENTS)
        upcasters.update(getattr(module, "UPCASTERS", {}))
    return EventRegistry(classes, upcasters)


__all__ = [
    "CONTRACT_MODULES",
    "DomainEvent",
    "Envelope",
    "EventMetadata",
    "EventRegistry",
    "default_registry",
]
