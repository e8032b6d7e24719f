"""How a relay proves, while idle, that the broker lost what it had acknowledged.

Two proofs, plain Kafka protocol, sound on Apache Kafka and on the embedded broker
(the relay decides what follows: see ``libs.messaging.relay``):

- :class:`Heartbeat`: one tiny record to the relay's own control topic
  (``<prefix>.relay-heartbeats``, one partition, compacted, read by no consumer).
  Produce acknowledgements are exact on every Kafka-protocol broker and a
  partition's offsets only grow, so an offset lower than the one after the previous
  heartbeat proves that the topic restarted empty. A topic that vanished (a broker
  that lost its data and does not auto-create topics) is created again, and then
  answers a lower offset too. Costs one produce request per beat, nothing else.
  This is the proof that works on the embedded broker, whose listed end offsets and
  fetches prove nothing after a restart.
- :class:`EndOffsets`: the event topic's listed end offsets against the relay's; a
  lower one is verified by fetching the last record the relay published ("offset
  out of range" is proof, silence proves nothing). This finds a single truncated
  partition on Apache Kafka (an unclean leader election), where both answers are
  exact. A partition once verified is not fetched again until either number changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from libs.messaging.kafka import KafkaConnection, end_offsets, holds_offset

log = logging.getLogger(__name__)

HEARTBEAT_TOPIC_CONFIG = {"cleanup.policy": "compact", "segment.ms": "3600000"}
"""One record per relay survives compaction; the offsets keep growing, which is all
the heartbeat needs."""

HOLDS_OFFSET_TIMEOUT_MS = 500
"""A fetch of a record that exists, or beyond the end, is answered at once on Kafka; only
an answer that proves nothing (the embedded broker after a restart) waits this long."""


def heartbeat_topic_for(topic: str) -> str:
    """The relay's control topic beside ``topic``: ``o2c.orders.events`` ->
    ``o2c.orders.relay-heartbeats``."""
    return f"{topic.removesuffix('.events')}.relay-heartbeats"


@dataclass
class Heartbeat:
    """Sends heartbeats for one relay; ``recreate`` makes the topic exist again."""

    topic: str
    key: bytes
    timeout: float
    recreate: Callable[[], Awaitable[None]]

    async def send(self, producer: AIOKafkaProducer) -> int:
        """The offset the broker gave this heartbeat. One refusal is no outage (a topic
        just created again, say): it is tried once more."""
        try:
            return await self._send(producer)
        except KafkaError as error:
            log.info("heartbeat to %s refused (%r); once more", self.topic, error)
            return await self._send(producer)

    async def _send(self, producer: AIOKafkaProducer) -> int:
        """Only the relay creates its heartbeat topic, so a send never waits for it alone:
        a record waiting for a topic that vanished would also hold up the producer's
        close for its whole request timeout."""
        if producer.client.cluster.partitions_for_topic(self.topic) is None:
            await self.recreate()  # vanished, or never asked for: the offset tells which
        delivery = await asyncio.wait_for(
            producer.send(self.topic, value=b"", key=self.key, partition=0), self.timeout)
        try:
            acknowledged = await asyncio.wait_for(asyncio.shield(delivery), self.timeout)
        except TimeoutError:  # the topic may have vanished while the record waited
            await self.recreate()
            acknowledged = await asyncio.wait_for(delivery, self.timeout)
        return int(acknowledged.offset)


@dataclass
class EndOffsets:
    """Checks one event topic's end offsets against the next offsets a relay expects."""

    kafka: KafkaConnection
    topic: str
    _verified: dict[int, tuple[int, int]] = field(default_factory=dict)

    async def check(self, expected: Mapping[int, int]) -> tuple[int, int | None]:
        """The topic's partition count (0: absent) and the first partition that no longer
        holds the last record published to it (None: all hold it, or nobody can tell)."""
        ends = await end_offsets(self.kafka, self.topic)
        for partition, next_offset in expected.items():
            if not await self._holds(ends, partition, next_offset):
                return len(ends), partition
        return len(ends), None

    def forget(self) -> None:
        """After a republish the old numbers mean nothing."""
        self._verified = {}

    async def _holds(self, ends: dict[int, int], partition: int, expected: int) -> bool:
        if not ends:
            return False
        end = ends.get(partition, 0)
        if end >= expected or self._verified.get(partition) == (expected, end):
            return True
        held = await holds_offset(self.kafka, self.topic, partition, expected - 1,
                                  timeout_ms=HOLDS_OFFSET_TIMEOUT_MS)
        if held:
            self._verified[partition] = (expected, end)
        return held is not False
