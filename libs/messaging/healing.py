"""Healing a stream gap from its source: the event topics themselves.

A consumer that holds an event because an earlier version of its stream has not
arrived waits for it (it normally comes from another partition, or after the
relay republishes). When it has not come within the bound, the consumer looks
for it where it must be if it was ever published: the publisher's topic.

Why the topic is the source (and not, say, the publisher's HTTP API):

- Event topics keep their whole history (``retention.ms=-1``) and every event
  is keyed by its stream id, so each published version of a stream is on the
  topic, on *some* partition. Reading every partition of every topic the
  consumer subscribes to, from the beginning, without a consumer group, finds
  it even when the group's committed offset is already past it (a topic whose
  partition count changed, an offset reset, a past consumer that skipped it).
  This is plain Apache Kafka behaviour: an unassigned reader with
  ``seek_to_beginning`` reads up to the high watermark of each partition and
  commits nothing, so it cannot disturb the group.
- No service reads another's database or needs credentials for another's API;
  ``libs`` stays free of any service.
- What is not on the topic cannot be healed from anywhere a consumer may look:
  the relay republishes everything it has not seen acknowledged (a broker that
  lost data). A gap that outlives this scan is parked with an alarm, never
  skipped.

A scan reads whole topics, so it runs only for gaps older than the bound, once
per gap (a gap that does not heal is parked, and parked gaps are scanned again
only by an operator's redrive), and all overdue gaps of one consumer process
share one scan. Every member of a group tends all of the group's held streams,
so each member may scan for the same gap once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from libs.events.envelope import Envelope
from libs.messaging.kafka import KafkaConnection, connection, end_offsets

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Found:
    """An event found on a topic, and where."""

    envelope: Envelope
    topic: str


async def find_on_topics(
    kafka: KafkaConnection | str,
    topics: Sequence[str],
    wanted: Mapping[str, set[int]],
    *,
    max_seconds: float = 30.0,
) -> list[Found]:
    """The events of ``wanted`` (stream id -> versions) held by ``topics``, in stream order.

    Reads each partition from its beginning to the end offset listed when the scan
    started (an end offset is a lower bound on some brokers, so the scan also goes on
    until a poll comes back empty), within ``max_seconds``. Undecodable messages
    and other streams' events are passed over.
    """
    ends: dict[TopicPartition, int] = {}
    for topic in topics:
        for partition, end in (await end_offsets(kafka, topic)).items():
            if end > 0:
                ends[TopicPartition(topic, partition)] = end
    if not ends or not wanted:
        return []
    keys = {stream.encode("utf-8"): stream for stream in wanted}
    found: dict[tuple[str, int], Found] = {}
    reader = AIOKafkaConsumer(**connection(kafka).client_kwargs(), enable_auto_commit=False,
                              auto_offset_reset="earliest")
    await reader.start()
    try:
        reader.assign(list(ends))
        await reader.seek_to_beginning(*ends)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_seconds
        while loop.time() < deadline:
            batch = await reader.getmany(timeout_ms=500, max_records=1000)
            for tp, records in batch.items():
                for record in records:
                    stream = keys.get(record.key or b"")
                    if stream is None:
                        continue
                    with contextlib.suppress(Exception):  # a malformed message is not our event
                        envelope = Envelope.from_wire(record.value)
                        if envelope.stream_version in wanted[stream]:
                            found[(stream, envelope.stream_version)] = Found(envelope, tp.topic)
            if not batch and await _all_read(reader, ends):
                break
        else:
            log.warning("gap healing: scan of %s stopped after %.0fs", list(topics), max_seconds)
    finally:
        with contextlib.suppress(Exception):
            await reader.stop()
    return [found[key] for key in sorted(found)]


async def _all_read(reader: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]) -> bool:
    return all([await reader.position(tp) >= end for tp, end in ends.items()])
