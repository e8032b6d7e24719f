"""The causal order of an order's events across services.

Events are ordered by when they occurred; but a reaction is never shown before
the event that caused it (its ``causation_id``), even when another service's
clock put it earlier. Events that occurred at the same moment keep their
service's order (stream version, then arrival).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
"""An event id (any hashable: a ``UUID``, or its text)."""

SortKey = tuple[str, str, int, int]


def causal_order(
    events: Iterable[T],
    *,
    event_id: Callable[[T], K],
    causation_id: Callable[[T], K | None],
    key: Callable[[T], SortKey],
) -> list[T]:
    """Deduplicate by event id, then sort by ``key`` with every parent before its children.

    A causation id that names no event of the set (a command, or an event of
    another conversation) imposes nothing.
    """
    unique: dict[K, T] = {}
    for event in events:
        unique.setdefault(event_id(event), event)
    children: dict[K, list[T]] = {}
    ready: list[tuple[SortKey, int, T]] = []
    for index, event in enumerate(unique.values()):
        parent = causation_id(event)
        if parent is not None and parent in unique and parent != event_id(event):
            children.setdefault(parent, []).append(event)
        else:
            ready.append((key(event), index, event))
    heapq.heapify(ready)
    ordered: list[T] = []
    counter = len(unique)
    while ready:
        _, _, event = heapq.heappop(ready)
        ordered.append(event)
        for child in children.pop(event_id(event), ()):
            counter += 1
            heapq.heappush(ready, (key(child), counter, child))
    return ordered + _orphans(children, key)


def _orphans(children: dict[K, list[T]], key: Callable[[T], SortKey]) -> list[T]:
    """Events stuck behind a causation cycle (impossible with unique ids): by key at the end."""
    rest = [child for group in children.values() for child in group]
    return sorted(rest, key=key)
