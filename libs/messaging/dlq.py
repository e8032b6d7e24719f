"""Redrive: put dead-lettered events back on the topic they came from.

Reads the dead-letter topic with its own consumer group (so each dead letter is
redriven once per group), republishes each message unchanged to its origin
topic, keyed as before, and commits. The consumer recognises a redriven event
by its id, applies it (or parks/dead-letters it again), and its inbox keeps
other groups, which had applied it already, from applying it twice.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from libs.events.topics import DEAD_LETTER_TOPIC
from libs.messaging.broker import end_offsets


async def redrive(
    bootstrap_servers: str,
    *,
    consumer: str | None = None,
    dead_letter_topic: str = DEAD_LETTER_TOPIC,
    max_seconds: float = 10.0,
) -> int:
    """Redrive every dead letter not redriven yet (of ``consumer`` only, if given)."""
    ends = await end_offsets(bootstrap_servers, dead_letter_topic)
    if not any(ends.values()):
        return 0
    group = f"o2c-dlq-redrive.{consumer or 'all'}"
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group,
                              enable_auto_commit=False, auto_offset_reset="earliest")
    writer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all",
                              enable_idempotence=False)
    await reader.start()
    await writer.start()
    redriven = 0
    try:
        partitions = [TopicPartition(dead_letter_topic, p) for p in ends]
        reader.assign(partitions)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_seconds
        remaining = {tp for tp in partitions if ends[tp.partition] > 0}
        # Read until every partition is past its listed end and a poll comes back empty
        # (listed end offsets are a lower bound on some brokers, not the exact end).
        while loop.time() < deadline:
            batch = await reader.getmany(timeout_ms=500)
            if not batch and all([await reader.position(tp) >= ends[tp.partition]
                                  for tp in remaining]):
                break
            for tp, records in batch.items():
                for record in records:
                    headers = dict(record.headers)
                    if consumer and headers.get("consumer", b"").decode() != consumer:
                        continue
                    origin = headers.get("origin_topic", b"").decode()
                    if not origin:
                        continue
                    await writer.send_and_wait(origin, value=record.value, key=record.key,
                                               headers=[("redriven", b"1")])
                    redriven += 1
                await reader.commit({tp: records[-1].offset + 1})
    finally:
        with contextlib.suppress(Exception):
            await reader.stop()
        with contextlib.suppress(Exception):
            await writer.stop()
    return redriven
