"""Kafka topic names: one topic per publishing service, plus the dead letters.

Messages are keyed by stream id, so every event of a stream lands on one
partition and is consumed in order.
"""

from __future__ import annotations

PUBLISHERS = ("partners", "orders", "credit", "delivery", "rebates")

TOPICS: dict[str, str] = {name: f"o2c.{name}.events" for name in PUBLISHERS}

DEAD_LETTER_TOPIC = "o2c.dead-letters"


def topic_for(service: str) -> str:
    """The topic the relay of ``service`` publishes to."""
    return TOPICS.get(service, f"o2c.{service}.events")
