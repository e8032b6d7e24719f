"""The relay: publishes a store's committed events to Kafka, in order, without loss.

The event store is the outbox: services never write to Kafka themselves. The
relay reads committed events in commit-safe order (see ``libs.store.store``),
publishes each keyed by its stream id (one partition per stream, so order per
stream holds), waits for the broker's acknowledgement, then records in one
transaction how far it got and seals what it read into the global hash chain.

- Crash between publish and record: the batch is published again. Repeats are
  allowed (consumers deduplicate by event id); gaps never happen.
- Broker lost its data (a restarted in-memory broker, a recreated topic): the
  relay remembers the next offset of each partition. When a produce answers a
  lower offset, or (checked while idle) the topic is gone or no longer serves
  the last record the relay published, the relay republishes the whole store
  from the start (consumers skip what they have, and their order guard skips
  anything the broker kept that now stands ahead of its stream's history).
- Several replicas: only the holder of the lease publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy import select

from libs.events.envelope import GENESIS_HASH
from libs.messaging.broker import end_offsets, ensure_topics, holds_offset
from libs.messaging.lease import Lease, lease_for
from libs.messaging.timing import sleep_or_stop
from libs.store.integrity import seal_hash
from libs.store.schema import event_seals, relay_offsets, relay_state
from libs.store.sql import upsert
from libs.store.store import ORIGIN, Checkpoint, EventStore

log = logging.getLogger(__name__)


@dataclass
class RelayState:
    published: Checkpoint = ORIGIN
    sealed: Checkpoint = ORIGIN
    sealed_seq: int = 0
    sealed_hash: str = GENESIS_HASH
    republished: int = 0
    next_offsets: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RelaySettings:
    batch_size: int = 500
    poll_interval: float = 0.05
    broker_check_interval: float = 2.0
    lease_retry_interval: float = 1.0
    lease_renew_interval: float = 3.0
    """Well under the lease's time to live (10 s by default)."""
    partitions: int = 3
    error_backoff: float = 0.5


class BrokerDataLost(Exception):
    """The broker holds fewer messages than the relay had published."""


class Relay:
    """Publishes one store to one topic; run one per service (more replicas wait on the lease)."""

    def __init__(
        self,
        store: EventStore,
        *,
        topic: str,
        bootstrap_servers: str,
        name: str = "relay",
        lease: Lease | None = None,
        settings: RelaySettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.topic = topic
        self.bootstrap_servers = bootstrap_servers
        self.name = name
        self.lease = lease or lease_for(store.db, f"relay:{name}")
        self.settings = settings or RelaySettings()
        self._clock = clock
        self._producer: AIOKafkaProducer | None = None
        self._state: RelayState | None = None
        self._last_broker_check = float("-inf")
        self.published_total = 0

    # -- lifecycle ---------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set; survives broker and database outages."""
        try:
            while not stop.is_set():
                if not await self.lease.acquire():
                    await sleep_or_stop(stop, self.settings.lease_retry_interval)
                    continue
                try:
                    await self._lead(stop)
                except (KafkaError, OSError, ConnectionError) as error:
                    log.warning("relay %s: broker unavailable (%s); retrying", self.name, error)
                    await self._close_producer()
                    await sleep_or_stop(stop, self.settings.error_backoff)
                except Exception:
                    log.exception("relay %s failed; retrying", self.name)
                    await self._close_producer()
                    self._state = None
                    await sleep_or_stop(stop, self.settings.error_backoff)
        finally:
            await self._close_producer()
            with contextlib.suppress(Exception):
                await self.lease.release()

    async def _lead(self, stop: asyncio.Event) -> None:
        await self.start()
        renewed_at = self._clock()
        while not stop.is_set():
            # Renew a few times per lease period, not on every poll: on SQLite a renewal is
            # a durable write transaction, on PostgreSQL a round trip.
            if self._clock() - renewed_at >= self.settings.lease_renew_interval:
                if not await self.lease.renew():
                    log.warning("relay %s lost its lease", self.name)
                    await self._close_producer()
                    return
                renewed_at = self._clock()
            published = await self.publish_batch()
            if published == 0:
                await self.check_broker()
                await sleep_or_stop(stop, self.settings.poll_interval)

    async def start(self) -> None:
        """Connect the producer, make sure the topic exists, load the durable state."""
        if self._producer is None:
            await ensure_topics(self.bootstrap_servers, [self.topic], self.settings.partitions)
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                acks="all",
                enable_idempotence=False,
                linger_ms=2,
                max_batch_size=512 * 1024,
                request_timeout_ms=15000,
            )
            await producer.start()
            self._producer = producer
        if self._state is None:
            self._state = await self._load_state()
            self._last_broker_check = float("-inf")
            await self.check_broker()

    async def stop(self) -> None:
        await self._close_producer()

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    # -- one step ----------------------------------------------------------------

    async def publish_batch(self) -> int:
        """Publish the next committed events; return how many (0: nothing new)."""
        await self.start()
        assert self._producer is not None and self._state is not None
        state = self._state
        page = await self.store.read_all(state.published, limit=self.settings.batch_size)
        if not page.events:
            return 0
        pending = []
        for envelope in page.events:
            pending.append(await self._producer.send(
                self.topic,
                value=envelope.to_wire(),
                key=envelope.stream_id.encode("utf-8"),
                headers=[("event_type", envelope.event_type.encode()),
                         ("event_id", str(envelope.event_id).encode())],
            ))
        acknowledged = await asyncio.gather(*pending)
        offsets = dict(state.next_offsets)
        for metadata in acknowledged:
            if metadata.offset < state.next_offsets.get(metadata.partition, 0):
                await self._republish_all(
                    f"partition {metadata.partition} answered offset {metadata.offset}, "
                    f"expected at least {state.next_offsets[metadata.partition]}")
                return 0
            offsets[metadata.partition] = max(offsets.get(metadata.partition, 0),
                                              metadata.offset + 1)
        await self._record(page.events, page.checkpoints, offsets)
        self.published_total += len(page.events)
        return len(page.events)

    async def check_broker(self, *, force: bool = False) -> bool:
        """Compare the broker's end offsets with ours; republish everything if it lost data."""
        now = self._clock()
        if not force and now - self._last_broker_check < self.settings.broker_check_interval:
            return False
        self._last_broker_check = now
        assert self._state is not None
        if not self._state.next_offsets:
            return False
        ends = await end_offsets(self.bootstrap_servers, self.topic)
        for partition, expected in self._state.next_offsets.items():
            if not ends:
                lost = True
            elif ends.get(partition, 0) >= expected:
                continue
            else:  # a low end offset is a hint; "out of range" for our last record is proof
                held = await holds_offset(self.bootstrap_servers, self.topic, partition,
                                          expected - 1)
                lost = held is False
            if lost:
                await self._republish_all(
                    f"partition {partition} no longer holds offset {expected - 1}")
                return True
        return False

    async def _republish_all(self, reason: str) -> None:
        log.warning("relay %s: broker lost data (%s); republishing from the start",
                    self.name, reason)
        assert self._state is not None
        # What the broker kept since it lost its data (our last batch, say) now stands
        # ahead of the republished history; consumers' order guard skips it and applies
        # it again when it comes in order. (Deleting the topic instead would race with
        # brokers that auto-create topics, and not every broker deletes what it hides.)
        await ensure_topics(self.bootstrap_servers, [self.topic], self.settings.partitions)
        self._state.published = ORIGIN
        self._state.next_offsets = {}
        self._state.republished += 1
        async with self.store.db.transaction() as conn:
            await conn.execute(relay_offsets.delete().where(relay_offsets.c.relay == self.name))
            await upsert(conn, relay_state, self._state_row(self._state), ["relay"])

    # -- durable state -----------------------------------------------------------

    async def _load_state(self) -> RelayState:
        async with self.store.db.read() as conn:
            row = (await conn.execute(
                select(relay_state).where(relay_state.c.relay == self.name))).mappings().first()
            offsets = (await conn.execute(
                select(relay_offsets.c.partition, relay_offsets.c.next_offset).where(
                    relay_offsets.c.relay == self.name, relay_offsets.c.topic == self.topic)
            )).all()
        if row is None:
            return RelayState()
        return RelayState(
            published=Checkpoint(row["published_tx"], row["published_position"]),
            sealed=Checkpoint(row["sealed_tx"], row["sealed_position"]),
            sealed_seq=row["sealed_seq"],
            sealed_hash=row["sealed_hash"],
            republished=row["republished"],
            next_offsets={partition: offset for partition, offset in offsets},
        )

    def _state_row(self, state: RelayState) -> dict[str, Any]:
        return {
            "relay": self.name,
            "published_tx": state.published.tx_id,
            "published_position": state.published.position,
            "sealed_tx": state.sealed.tx_id,
            "sealed_position": state.sealed.position,
            "sealed_seq": state.sealed_seq,
            "sealed_hash": state.sealed_hash,
            "republished": state.republished,
        }

    async def _record(self, envelopes: list[Any], checkpoints: list[Checkpoint],
                      offsets: dict[int, int]) -> None:
        assert self._state is not None
        state = RelayState(**{**self._state.__dict__})
        seals = []
        for envelope, checkpoint in zip(envelopes, checkpoints, strict=True):
            if checkpoint > state.sealed:
                state.sealed_seq += 1
                state.sealed_hash = seal_hash(state.sealed_hash, envelope.position,
                                              envelope.stream_hash, self.store.chain)
                state.sealed = checkpoint
                seals.append({"seq": state.sealed_seq, "position": envelope.position,
                              "stream_hash": envelope.stream_hash,
                              "chain_hash": state.sealed_hash})
        state.published = checkpoints[-1]
        state.next_offsets = offsets
        async with self.store.db.transaction() as conn:
            if seals:
                await conn.execute(event_seals.insert(), seals)
            await upsert(conn, relay_state, self._state_row(state), ["relay"])
            await upsert(conn, relay_offsets, [
                {"relay": self.name, "topic": self.topic, "partition": p, "next_offset": o}
                for p, o in offsets.items()], ["relay", "topic", "partition"])
        self._state = state


