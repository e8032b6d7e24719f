"""Test-only events (not part of any service contract)."""

from __future__ import annotations

from libs.events.base import DomainEvent
from libs.events.registry import EventRegistry


class CounterIncremented(DomainEvent):
    TYPE = "test.CounterIncremented"
    amount_minor: int
    poison: bool = False


registry = EventRegistry([CounterIncremented])
