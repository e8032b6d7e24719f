"""Consumers: at-least-once delivery made effectively-once by an inbox.

Each message is applied in one database transaction that also records its
event id in the ``inbox``; a redelivered event finds its id there and changes
nothing. Offsets are committed to Kafka only after the effect is committed.

**A consumer never commits past an event it has not applied or kept.** Messages
are keyed by stream id, so a stream's events normally arrive in order on one
partition; but a stream can be split across partitions (a topic whose
partition count changed) and a broker that lost data or a retried produce can
reorder it. An order guard (per stream, the last version passed) therefore
decides each event in the effect's transaction:

- at or below the head: a repeat, dropped (a whole batch of certain repeats,
  after a broker loss, is dropped with one read and no write transaction);
- the next version: applied (or ignored, if no handler wants it), and the
  head moves;
- ahead of the head, or behind an unresolved dead letter of its stream:
  *held* durably in ``held_events`` (``libs.messaging.held``) in that same
  transaction, then its offset is committed. When the version before it is
  applied, held events follow in order: at once in the process that applied
  it, else (another member of the group applied it, or it raced the hold) at
  the next tending, within ``tend_interval``.

Offsets are committed only by ``_consume_partition``, after every record of
the batch was applied, ignored, held or dead-lettered in its own committed
transaction; a crash in between re-reads the batch, and the guard drops what
was passed or held already.

A gap (held events waiting for a version that has not come) is waited for;
``gap_heal_seconds`` after the stream reached it, it is healed from the topics
(``libs.messaging.healing``); if the missing version is not there either, the
stream is parked with an alarm (``gap_alarms``, ``parked_streams`` and an
ERROR line naming the consumer, the stream and the missing versions). Other
streams keep flowing; nothing is dropped, and the missing event still
releases the stream whenever it arrives.

A handler that keeps failing is retried a bounded number of times (transient
failures, such as a concurrent append or the database away, until they pass),
then its event becomes a dead letter of this group (``libs.messaging.dlq``)
and the consumer moves on; later events of that stream are held behind it
while other streams flow. ``redrive`` re-applies dead letters from the group's
own table, in stream order, in process; ``discard`` resolves one for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import uuid
import zlib
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from sqlalchemy import exists, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent, EventMetadata, format_timestamp, utc_now
from libs.events.envelope import Envelope
from libs.events.registry import EventRegistry
from libs.events.topics import DEAD_LETTER_TOPIC
from libs.messaging import dlq, held
from libs.messaging.broker import ensure_topics
from libs.messaging.healing import find_on_topics
from libs.messaging.timing import sleep_or_stop
from libs.store.database import Database
from libs.store.errors import ConcurrencyError
from libs.store.schema import inbox, stream_heads

log = logging.getLogger(__name__)

_STRIPES = 64


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a handler gets: the event, its envelope and the open transaction."""

    conn: AsyncConnection
    envelope: Envelope
    event: DomainEvent
    consumer: str

    @property
    def meta(self) -> EventMetadata:
        """Metadata for events appended in reaction: same correlation, caused by this event."""
        return EventMetadata(
            actor=f"system:{self.consumer}",
            correlation_id=self.envelope.correlation_id,
            causation_id=self.envelope.event_id,
        )

    def event_ids(self, count: int, salt: str = "") -> list[uuid.UUID]:
        """Deterministic ids for reaction events: a replayed reaction appends nothing new."""
        return [
            uuid.uuid5(self.envelope.event_id, f"{self.consumer}:{salt}:{index}")
            for index in range(count)
        ]


Handler = Callable[[Delivery], Awaitable[None]]


class Outcome(enum.Enum):
    APPLIED = "applied"
    REDRIVEN = "redriven"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    HELD = "held"
    DEAD = "dead"


@dataclass(frozen=True)
class ConsumerSettings:
    max_attempts: int = 5
    retry_backoff: float = 0.05
    max_records: int = 200
    poll_timeout_ms: int = 200
    partitions: int = 3
    session_timeout_ms: int = 10000
    heartbeat_interval_ms: int = 3000
    rebalance_timeout_ms: int = 10000
    #: How long a stream gap is waited for before it is healed from the topics, then parked.
    gap_heal_seconds: float = 30.0
    #: How often held events are looked at (releases missed by a race, overdue gaps).
    tend_interval: float = 1.0
    #: The longest one healing scan of the topics may read.
    heal_scan_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class Seen:
    """What a batch's streams had passed before the batch: heads and held versions."""

    heads: Mapping[str, int]
    held: Collection[tuple[str, int]]

    def known(self, envelope: Envelope) -> Outcome | None:
        """DUPLICATE or HELD when the event is certainly passed or held already; else None."""
        if envelope.stream_version <= self.heads.get(envelope.stream_id, 0):
            return Outcome.DUPLICATE
        if (envelope.stream_id, envelope.stream_version) in self.held:
            return Outcome.HELD
        return None


@dataclass
class RedriveReport:
    """What one redrive did: applied, still failing, not an event at all, gaps healed."""

    redriven: int = 0
    still_dead: int = 0
    undecodable: int = 0
    healed_streams: int = 0
    attempted: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"redriven": self.redriven, "still_dead": self.still_dead,
                "undecodable": self.undecodable, "healed_streams": self.healed_streams,
                "attempted": self.attempted}


class Consumer:
    """One consumer group: a name, the topics it reads and a handler per event type."""

    def __init__(
        self,
        *,
        name: str,
        db: Database,
        registry: EventRegistry,
        handlers: Mapping[str, Handler],
        topics: Sequence[str],
        bootstrap_servers: str,
        settings: ConsumerSettings | None = None,
        dead_letter_topic: str = DEAD_LETTER_TOPIC,
    ) -> None:
        self.name = name
        self.db = db
        self.registry = registry
        self.handlers = dict(handlers)
        self.topics = list(topics)
        self.bootstrap_servers = bootstrap_servers
        self.settings = settings or ConsumerSettings()
        self.dead_letter_topic = dead_letter_topic
        self._producer: AIOKafkaProducer | None = None
        self.outcomes: dict[Outcome, int] = dict.fromkeys(Outcome, 0)
        #: Gaps that outlived their bound and the healing (an alarm each), since start.
        self.gap_alarms = 0
        #: Streams parked right now (their gap is still open), as of the last tending.
        self.parked_streams = 0
        self._held_streams: set[str] = set()
        self._locks = [asyncio.Lock() for _ in range(_STRIPES)]
        self._tending: asyncio.Task[None] | None = None

    # -- the Kafka loop ------------------------------------------------------------

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Consume until ``stop`` is set; reconnects after broker outages."""
        self._tend_while_running(stop)
        while not stop.is_set():
            settings = self.settings
            consumer = AIOKafkaConsumer(
                *self.topics,
                bootstrap_servers=self.bootstrap_servers,
                group_id=self.name,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                metadata_max_age_ms=3000,
                session_timeout_ms=settings.session_timeout_ms,
                heartbeat_interval_ms=settings.heartbeat_interval_ms,
                rebalance_timeout_ms=settings.rebalance_timeout_ms,
            )
            try:
                # Create our topics with the agreed partition count before subscribing:
                # a broker that auto-creates topics would otherwise pick its own count.
                await ensure_topics(self.bootstrap_servers, [*self.topics, self.dead_letter_topic],
                                    settings.partitions)
                await consumer.start()
                if ready is not None:
                    ready.set()
                while not stop.is_set():
                    batch = await consumer.getmany(
                        timeout_ms=self.settings.poll_timeout_ms,
                        max_records=self.settings.max_records,
                    )
                    if batch and not await self._consume_batch(consumer, batch):
                        await sleep_or_stop(stop, 1.0)
            except (KafkaError, OSError, ConnectionError) as error:
                log.warning("consumer %s: broker trouble (%s); reconnecting", self.name, error)
                await sleep_or_stop(stop, 0.5)
            except Exception:  # a database outage, say: never die, the offsets were not committed
                log.exception("consumer %s failed; reconnecting", self.name)
                await sleep_or_stop(stop, 1.0)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
        await self.close()

    async def _consume_batch(
        self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[ConsumerRecord]]
    ) -> bool:
        """Each partition's records, side by side. False when a partition failed.

        Whatever fails, the Kafka consumer stays: a new one would re-join the group, and
        (on brokers that keep a departed member until its session times out) the whole
        group would wait for that before it resumes. Instead the batch's partitions are
        rewound to their first record, so what was not committed is read again (the
        inbox skips what was applied):
        - a commit refused because the group rebalanced (a member came or went, or the
          broker lost the group with its data) is no failure: the consumer re-joins by
          itself and reads on from the committed offsets;
        - anything else (the database away, say) is logged; the caller pauses.
        """
        results = await asyncio.gather(*(
            self._consume_partition(consumer, tp, records) for tp, records in batch.items()
        ), return_exceptions=True)
        failures = [result for result in results if isinstance(result, BaseException)]
        if not failures:
            return True
        for failure in failures:
            if not isinstance(failure, Exception):  # cancelled: stop as asked
                raise failure
        assigned = consumer.assignment()
        for tp, records in batch.items():
            if tp in assigned:
                consumer.seek(tp, records[0].offset)
        errors = [f for f in failures if not isinstance(f, CommitFailedError)]
        if not errors:
            log.info("consumer %s: commit refused, the group rebalanced; re-joining", self.name)
            return True
        log.error("consumer %s: a batch failed; reading it again", self.name,
                  exc_info=errors[0])
        return False

    async def _consume_partition(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[ConsumerRecord]
    ) -> None:
        seen = await self._seen_before(records)
        for record in records:
            await self.handle_record(record, seen)
        await consumer.commit({tp: records[-1].offset + 1})

    async def _seen_before(self, records: list[ConsumerRecord]) -> Seen:
        """The heads and held versions of a batch's streams, in one read (keys are stream ids)."""
        streams = {record.key.decode("utf-8", "replace") for record in records if record.key}
        if not streams:
            return Seen({}, set())
        async with self.db.read() as conn:
            rows = await conn.execute(select(stream_heads.c.stream_id, stream_heads.c.version).where(
                stream_heads.c.consumer == self.name, stream_heads.c.stream_id.in_(streams)))
            heads = dict(rows.all())
            return Seen(heads, await held.held_keys(conn, self.name, streams))

    async def handle_record(self, record: ConsumerRecord, seen: Seen | None = None) -> Outcome:
        """One message. ``seen`` (read before the batch) lets a certainly-old or already-held
        event go without a write transaction: heads only grow, so a version at or below a head
        read earlier is a repeat (after a broker loss, the whole history is)."""
        try:
            envelope = Envelope.from_wire(record.value)
        except Exception as error:  # any malformed message: never let it stop the partition
            return await self._dead_letter_undecodable(record, error)
        known = seen.known(envelope) if seen is not None else None
        if known is not None:
            self.outcomes[known] += 1
            return known
        return await self.handle(envelope, origin_topic=record.topic)

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    # -- one event -------------------------------------------------------------------

    async def handle(self, envelope: Envelope, *, origin_topic: str = "") -> Outcome:
        """Apply one event exactly once (or hold or dead-letter it), then the held events it
        lets through. A stream's events are handled one at a time in this process."""
        async with self._lock(envelope.stream_id):
            outcome = await self._handle_one(envelope, origin_topic)
            if outcome is not Outcome.HELD and envelope.stream_id in self._held_streams:
                await self._release_held(envelope.stream_id)
        return outcome

    def _lock(self, stream_id: str) -> asyncio.Lock:
        return self._locks[zlib.crc32(stream_id.encode("utf-8")) % _STRIPES]

    async def _handle_one(self, envelope: Envelope, origin_topic: str, *,
                          redrive: bool = False) -> Outcome:
        """Apply one event, retrying, holding or dead-lettering it.

        Transient failures (a concurrent append, the database away) are retried
        until they pass: dead-lettering them would block a healthy stream. Other
        failures are retried ``max_attempts`` times, then dead-lettered.
        """
        handler = self.handlers.get(envelope.event_type)
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = await self._apply(envelope, handler, origin_topic, redrive)
            except Exception as error:
                transient = _is_transient(error)
                if not transient and attempt >= self.settings.max_attempts:
                    log.error("consumer %s: %s %s failed %d times, dead-lettered: %r", self.name,
                              envelope.event_type, envelope.event_id, attempt, error)
                    await self._dead_letter(envelope, origin_topic, repr(error), attempt)
                    outcome = Outcome.DEAD
                else:
                    log.warning("consumer %s: %s %s failed (attempt %d%s): %r", self.name,
                                envelope.event_type, envelope.event_id, attempt,
                                ", transient" if transient else "", error)
                    await asyncio.sleep(min(self.settings.retry_backoff * 2 ** min(attempt - 1, 10), 5.0))
                    continue
            self.outcomes[outcome] += 1
            return outcome

    async def _apply(self, envelope: Envelope, handler: Handler | None, origin_topic: str,
                     redrive: bool) -> Outcome:
        """One event, in one transaction: the order guard, then the effect and the inbox.

        Per stream the consumer records the last version it passed (applied, ignored
        or dead-lettered). An older version is a repeat. A version beyond the next
        one, or one behind an unresolved dead letter, is held in this transaction
        (so its offset may be committed). Only a redrive applies an event behind the
        head: a dead letter of this group, taken from its table.
        """
        async with self.db.transaction() as conn:
            if redrive:
                return await self._apply_dead_letter(conn, envelope, handler)
            head, in_inbox, blocked = await self._guard(conn, envelope)
            version = envelope.stream_version
            if version <= head:
                return Outcome.DUPLICATE
            if version > head + 1:
                return await self._hold(conn, envelope, origin_topic)
            if handler is None:
                await self._advance(conn, envelope)
                return Outcome.IGNORED
            if in_inbox:
                await self._advance(conn, envelope)
                return Outcome.DUPLICATE
            if blocked:
                return await self._hold(conn, envelope, origin_topic)
            await self._run_handler(conn, envelope, handler)
            await self._advance(conn, envelope)
            return Outcome.APPLIED

    async def _guard(self, conn: AsyncConnection, envelope: Envelope) -> tuple[int, bool, bool]:
        """What the order guard needs, in one read (it runs for every event): the stream's
        head, whether the event is in the inbox, and whether a dead letter blocks it."""
        head = select(stream_heads.c.version).where(
            stream_heads.c.consumer == self.name,
            stream_heads.c.stream_id == envelope.stream_id).scalar_subquery()
        in_inbox = exists().where(inbox.c.consumer == self.name,
                                  inbox.c.event_id == envelope.event_id)
        row = (await conn.execute(select(
            func.coalesce(head, 0), in_inbox, dlq.blocking(self.name, envelope)))).one()
        return int(row[0]), bool(row[1]), bool(row[2])

    async def _apply_dead_letter(self, conn: AsyncConnection, envelope: Envelope,
                                 handler: Handler | None) -> Outcome:
        """A redriven dead letter: applied once, and only after any dead letter before it."""
        if not await dlq.is_unresolved(conn, self.name, envelope.event_id):
            return Outcome.DUPLICATE  # resolved meanwhile
        if await dlq.is_blocked(conn, self.name, envelope):
            return Outcome.HELD  # stays dead until the one before it is resolved
        if handler is not None and not await self._in_inbox(conn, envelope):
            await self._run_handler(conn, envelope, handler)
        await dlq.mark_redriven(conn, self.name, envelope.event_id)
        return Outcome.REDRIVEN

    async def _run_handler(self, conn: AsyncConnection, envelope: Envelope,
                           handler: Handler) -> None:
        event = self.registry.decode(envelope)
        await handler(Delivery(conn, envelope, event, self.name))
        await conn.execute(inbox.insert().values(
            consumer=self.name, event_id=envelope.event_id,
            processed_at=format_timestamp(utc_now())))

    async def _in_inbox(self, conn: AsyncConnection, envelope: Envelope) -> bool:
        return (await conn.execute(select(inbox.c.event_id).where(
            inbox.c.consumer == self.name, inbox.c.event_id == envelope.event_id))).first() is not None

    async def _hold(self, conn: AsyncConnection, envelope: Envelope, origin_topic: str) -> Outcome:
        await held.hold(conn, self.name, envelope, origin_topic)
        self._held_streams.add(envelope.stream_id)
        return Outcome.HELD

    async def _advance(self, conn: AsyncConnection, envelope: Envelope) -> None:
        """Move the stream's head to this event's version (never backwards)."""
        values = {"consumer": self.name, "stream_id": envelope.stream_id,
                  "version": envelope.stream_version}
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(stream_heads).values(**values)
        await conn.execute(stmt.on_conflict_do_update(
            index_elements=["consumer", "stream_id"], set_={"version": stmt.excluded.version},
            where=stream_heads.c.version < stmt.excluded.version))

    async def _release_held(self, stream_id: str) -> None:
        """Apply the held events that follow the stream's head, in version order.

        The one mechanism behind every "the stream may go on now": the missing
        version arrived, a gap was healed, a dead letter was redriven or discarded.
        Stops at a gap, or at an event held again (behind a dead letter). The caller
        holds the stream's lock.
        """
        while True:
            async with self.db.transaction() as conn:
                head = (await conn.execute(select(stream_heads.c.version).where(
                    stream_heads.c.consumer == self.name,
                    stream_heads.c.stream_id == stream_id))).scalar() or 0
                follower, remaining = await held.next_held(conn, self.name, stream_id, head)
            if not remaining:
                self._held_streams.discard(stream_id)
            if follower is None:
                return
            outcome = await self._handle_one(follower.envelope, follower.origin_topic)
            if outcome is Outcome.HELD:
                return

    # -- dead letters ---------------------------------------------------------------

    async def _dead_letter(self, envelope: Envelope, origin_topic: str, reason: str,
                           attempts: int) -> None:
        """Make the event a dead letter of this group (once), moving the head past it.

        A new dead letter is announced on the dead-letter topic before it is recorded,
        so a crash leaves at worst a repeated notice; one recorded already (a failed
        redrive) is updated and not announced again. No transaction stays open while
        the broker is slow.
        """
        wire = envelope.to_wire().decode("utf-8")
        async with self.db.read() as conn:
            known = await dlq.is_recorded(conn, self.name, envelope.event_id)
        if not known:
            await self._publish_dead_letter(envelope.stream_id.encode(), wire.encode("utf-8"),
                                            origin_topic, reason, attempts)
        async with self.db.transaction() as conn:
            await self._advance(conn, envelope)
            await dlq.record(conn, self.name, event_id=envelope.event_id,
                             stream_id=envelope.stream_id, stream_version=envelope.stream_version,
                             event_type=envelope.event_type, reason=reason, attempts=attempts,
                             origin_topic=origin_topic, wire=wire)

    async def _dead_letter_undecodable(self, record: ConsumerRecord, error: Exception) -> Outcome:
        """A message that is not an event: one dead letter per group, however often it is read.

        It belongs to no stream (it blocks none) and can never be redriven, only discarded.
        """
        event_id = dlq.undecodable_id(record.topic, record.key, record.value)
        async with self.db.read() as conn:
            if await dlq.is_recorded(conn, self.name, event_id):
                self.outcomes[Outcome.DUPLICATE] += 1
                return Outcome.DUPLICATE
        log.error("consumer %s: undecodable message at %s:%s offset %s: %s", self.name,
                  record.topic, record.partition, record.offset, error)
        reason = f"undecodable: {error!r}"
        await self._publish_dead_letter(record.key, record.value, record.topic, reason, 0)
        key = (record.key or b"").decode("utf-8", "replace")
        async with self.db.transaction() as conn:
            await dlq.record(conn, self.name, event_id=event_id, stream_id="", stream_version=0,
                             event_type=dlq.UNDECODABLE, reason=f"{reason} (key {key!r})",
                             attempts=0, origin_topic=record.topic,
                             wire=(record.value or b"").decode("utf-8", "replace"))
        self.outcomes[Outcome.DEAD] += 1
        return Outcome.DEAD

    async def _publish_dead_letter(self, key: bytes | None, value: bytes | None,
                                   origin_topic: str, reason: str, attempts: int) -> None:
        if self._producer is None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all",
                                        enable_idempotence=False, request_timeout_ms=10000)
            await producer.start()
            self._producer = producer
        headers = [
            ("consumer", self.name.encode()),
            ("origin_topic", origin_topic.encode()),
            ("reason", reason[:2000].encode()),
            ("attempts", str(attempts).encode()),
        ]
        await self._producer.send_and_wait(self.dead_letter_topic, value=value, key=key,
                                           headers=headers)

    async def redrive(self, ids: Collection[uuid.UUID] | None = None) -> RedriveReport:
        """Re-apply this group's unresolved dead letters (``ids`` only, if given) in stream
        order, from its own table; then the events held behind each one that passes.

        A dead letter that fails again stays one dead letter (updated, not announced
        again), so repeating a redrive changes nothing more. Without ``ids``, parked
        gaps are also healed from the topics once more.
        """
        async with self.db.read() as conn:
            letters = await dlq.unresolved(conn, self.name, ids)
        report = RedriveReport()
        for letter in letters:
            report.attempted.append(str(letter.event_id))
            if letter.event_type == dlq.UNDECODABLE:
                report.undecodable += 1
                continue
            envelope = Envelope.from_wire(letter.envelope.encode("utf-8"))
            async with self._lock(envelope.stream_id):
                outcome = await self._handle_one(envelope, letter.origin_topic or "", redrive=True)
                if outcome is Outcome.REDRIVEN:
                    report.redriven += 1
                    await self._release_held(envelope.stream_id)
                elif outcome is not Outcome.DUPLICATE:
                    report.still_dead += 1
        if ids is None:
            async with self.db.read() as conn:
                parked = [w for w in await held.waiting_streams(conn, self.name)
                          if w.parked_at is not None and w.missing]
            report.healed_streams = await self._heal(parked, park=False)
        return report

    async def discard(self, event_id: uuid.UUID, *, reason: str, actor: str) -> bool:
        """Resolve a dead letter as never to be applied (recorded with ``reason`` and ``actor``);
        the events held behind it go on. False when there is no such unresolved dead letter."""
        async with self.db.transaction() as conn:
            stream = await dlq.discard(conn, self.name, event_id, reason=reason, actor=actor)
        if stream is None:
            return False
        log.warning("consumer %s: dead letter %s discarded by %s: %s", self.name, event_id,
                    actor, reason)
        if stream:
            async with self._lock(stream):
                await self._release_held(stream)
        return True

    # -- held events and gaps ---------------------------------------------------------

    def _tend_while_running(self, stop: asyncio.Event) -> None:
        """Start ``tend`` beside the calling task (``run``), ending with it (once at a time)."""
        if self._tending is not None and not self._tending.done():
            return
        tending = self._tending = asyncio.create_task(self.tend(stop),
                                                      name=f"consumer {self.name}: tend")
        current = asyncio.current_task()
        if current is not None:
            current.add_done_callback(lambda _: tending.cancel())

    async def tend(self, stop: asyncio.Event) -> None:
        """Until ``stop``: every ``tend_interval``, look after held events (``tend_once``)."""
        while not stop.is_set():
            try:
                await self.tend_once()
            except Exception:  # the database or broker away: the next round tries again
                log.exception("consumer %s: tending held events failed", self.name)
            await sleep_or_stop(stop, self.settings.tend_interval)

    async def tend_once(self) -> None:
        """Release held events whose stream can go on (a release another member or a race
        missed), heal gaps older than ``gap_heal_seconds``, and park those that stay open.

        An idle round (nothing to release or heal) is one read: it runs every
        ``tend_interval`` in every service."""
        async with self.db.read() as conn:
            waiting = await held.waiting_streams(conn, self.name)
        self._held_streams |= {w.stream_id for w in waiting}
        now = utc_now()
        released, overdue = False, []
        for stream in waiting:
            if stream.releasable:
                async with self._lock(stream.stream_id):
                    await self._release_held(stream.stream_id)
                released = True
            elif (stream.missing and stream.parked_at is None
                  and stream.waited(now) >= self.settings.gap_heal_seconds):
                overdue.append(stream)
        if overdue:
            await self._heal(overdue, park=True)
        if released or overdue:
            async with self.db.read() as conn:
                waiting = await held.waiting_streams(conn, self.name)
        self.parked_streams = sum(1 for w in waiting if w.parked_at is not None and w.missing)

    async def _heal(self, gaps: Sequence[held.WaitingStream], *, park: bool) -> int:
        """Look for the missing versions of ``gaps`` on the topics and apply what is found;
        park (with the alarm) the streams still missing some, if ``park``. Returns how many
        streams were healed."""
        if not gaps:
            return 0
        found = await find_on_topics(
            self.bootstrap_servers, self.topics, {g.stream_id: set(g.missing) for g in gaps},
            max_seconds=self.settings.heal_scan_seconds)
        for item in found:
            async with self._lock(item.envelope.stream_id):
                await self._handle_one(item.envelope, item.topic)
        healed = 0
        for gap in gaps:
            async with self._lock(gap.stream_id):
                await self._release_held(gap.stream_id)
            async with self.db.transaction() as conn:
                still = next((w for w in await held.waiting_streams(
                    conn, self.name, [gap.stream_id]) if w.missing), None)
                if still is None:
                    healed += 1
                    log.warning("consumer %s: stream %s healed from the topics (versions %d-%d)",
                                self.name, gap.stream_id, gap.missing.start, gap.missing.stop - 1)
                elif park:
                    await held.park(conn, self.name, gap.stream_id)
            if still is not None and park:
                self.gap_alarms += 1
                log.error("consumer %s: stream %s parked: versions %d-%d missing for %.0fs and "
                          "not on %s; %d later event(s) held, other streams flow", self.name,
                          still.stream_id, still.missing.start, still.missing.stop - 1,
                          still.waited(utc_now()), ", ".join(self.topics), still.count)
        return healed


def _is_transient(error: Exception) -> bool:
    """Failures that pass by themselves: retry them, never dead-letter them."""
    if isinstance(error, ConcurrencyError | OSError | TimeoutError | ConnectionError):
        return True
    if isinstance(error, DBAPIError):
        return bool(error.connection_invalidated) or isinstance(error, OperationalError)
    return False
