"""Consumers: the Kafka loop that applies a group's events exactly once, in stream order.

At-least-once delivery is made exactly-once by the inbox and the order guard
(``libs.messaging.inbox``): every effect is committed together with its event
id and its stream's head, and offsets are committed to Kafka only after that.
Events ahead of their stream are held (``libs.messaging.held``), gaps are healed
from the topics (``libs.messaging.healing``), and an event whose handler keeps
failing becomes a dead letter of this group (``libs.messaging.dlq``).

**One transaction per batch.** A poll (``getmany``: up to ``max_records`` records of
the assigned partitions) is decided against one guard read and applied in
transactions of at most ``batch_events`` events: the handlers' effects, then
the held rows, inbox rows and heads in bulk, then one commit; the offsets of the
whole poll are committed after the last of them. A consumer that dies anywhere
in between leaves either the whole transaction or nothing, and its offsets
behind: the poll is read again and the guard drops what was committed.

**A failing handler** (why not a savepoint per event: that is two more round
trips for every event, to pay for a failure that is rare). The batch's
transaction is rolled back whole, so no partial effect survives; then the events
before the failing one are applied again as a batch (they passed once), the
failing one alone, exactly as before batches existed (retried; transient
failures until they pass, others ``max_attempts`` times and then dead-lettered),
and the rest go on as a new batch. So the batch never commits past the failing
event, and never loses the others' effects. A failure outside the handlers (the
database away at commit) rewinds the whole poll and reads it again.

**A stream's events are handled one at a time in this process.** A batch holds
the (striped) locks of all its streams, taken in one order, while it runs;
releases, redrives, tending and healing take one stream's lock at a time. Held
events whose stream may now go on are released once the batch has committed.

**What a batch's handlers share** (``libs.messaging.work.BatchWork``, as
``Delivery.work``): the batch's events to handle (the whole batch is decided
against the guard before its first handler) and decoded once up front, state kept
for the batch, and writes registered to run once after the last handler, before
the inbox rows and the commit (a read model folded in memory and written in one
upsert: projections). A burst of reactions to one hot stream (a partner's
account) loads it once per batch: after the first append the command path
(``libs.runtime.commands``) keeps the saved state and head, and the next
reaction starts from them instead of reading the stream again; the documents the
reactions read and write there (``Unit.document``) are read once, or all ahead, and
written in one upsert at the end. All of it lives
and dies with the batch's transaction; an event applied alone gets a
``BatchWork`` of its own, finished before its inbox row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import zlib
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent, utc_now
from libs.events.envelope import Envelope
from libs.events.registry import EventRegistry
from libs.events.topics import DEAD_LETTER_TOPIC
from libs.messaging import dlq, held, inbox
from libs.messaging.healing import find_on_topics
from libs.messaging.inbox import Delivery, Handler, Incoming, Outcome
from libs.messaging.kafka import KafkaConnection, connection, ensure_topics
from libs.messaging.timing import sleep_or_stop
from libs.messaging.work import BatchWork
from libs.store.database import Database
from libs.store.errors import ConcurrencyError
from libs.telemetry import tracing

__all__ = ["Consumer", "ConsumerSettings", "Delivery", "Handler", "Outcome", "RedriveReport"]

log = logging.getLogger(__name__)

_STRIPES = 64


@dataclass(frozen=True)
class ConsumerSettings:
    max_attempts: int = 5
    retry_backoff: float = 0.05
    max_records: int = 200
    #: The most events one transaction applies (a poll may hold several such batches). On
    #: SQLite a batch holds the service's one writer: bigger batches delay its commands.
    batch_events: int = 50
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


class _HandlerFailed(Exception):
    """A handler failed inside a batch: the batch is rolled back and split at ``index``."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


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
        kafka: KafkaConnection | str,
        settings: ConsumerSettings | None = None,
        dead_letter_topic: str = DEAD_LETTER_TOPIC,
    ) -> None:
        self.name = name
        self.db = db
        self.registry = registry
        self.handlers = dict(handlers)
        self.topics = list(topics)
        self.kafka = connection(kafka)
        self.settings = settings or ConsumerSettings()
        self.dead_letter_topic = dead_letter_topic
        self._notices = dlq.Notices(self.kafka, dead_letter_topic, name)
        self.outcomes: dict[Outcome, int] = dict.fromkeys(Outcome, 0)
        #: Gaps that outlived their bound and the healing (an alarm each), since start.
        self.gap_alarms = 0
        #: Streams parked right now (their gap is still open), as of the last tending.
        self.parked_streams = 0
        self._held_streams: set[str] = set()
        self._locks = [asyncio.Lock() for _ in range(_STRIPES)]
        self._tending: asyncio.Task[None] | None = None
        self._kafka: AIOKafkaConsumer | None = None
        #: The next offset of each partition, as this member last committed it.
        self.committed: dict[TopicPartition, int] = {}

    def lag(self) -> dict[TopicPartition, int]:
        """Per assigned partition this member has committed on: messages after its committed
        offset, up to the high watermark the broker last reported (a gauge for metrics)."""
        kafka = self._kafka
        if kafka is None:
            return {}
        found = {}
        for tp in kafka.assignment():
            high, done = kafka.highwater(tp), self.committed.get(tp)
            if high is not None and done is not None:
                found[tp] = max(high - done, 0)
        return found

    # -- the Kafka loop ------------------------------------------------------------

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Consume until ``stop`` is set; reconnects after broker outages."""
        self._tend_while_running(stop)
        while not stop.is_set():
            settings = self.settings
            consumer = AIOKafkaConsumer(
                *self.topics,
                **self.kafka.client_kwargs(),
                group_id=self.kafka.group_id(self.name),
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
                await ensure_topics(self.kafka, [*self.topics, self.dead_letter_topic],
                                    settings.partitions)
                await consumer.start()
                self._kafka = consumer
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
                self._kafka = None
                with contextlib.suppress(Exception):
                    await consumer.stop()
        await self.close()

    async def _consume_batch(
        self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[ConsumerRecord]]
    ) -> bool:
        """Apply a poll, then commit its offsets. False when it failed.

        Whatever fails, the Kafka consumer stays: a new one would re-join the group, and
        (on brokers that keep a departed member until its session times out) the whole
        group would wait for that before it resumes. Instead the poll's partitions are
        rewound to their first record, so what was not committed is read again (the
        guard drops what was applied):
        - a commit refused because the group rebalanced (a member came or went, or the
          broker lost the group with its data) is no failure: the consumer re-joins by
          itself and reads on from the committed offsets;
        - anything else (the database away, say) is logged; the caller pauses.
        """
        try:
            await self.apply_records([record for records in batch.values() for record in records])
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            await consumer.commit(offsets)
            self.committed.update(offsets)
            return True
        except Exception as failure:
            assigned = consumer.assignment()
            for tp, records in batch.items():
                if tp in assigned:
                    consumer.seek(tp, records[0].offset)
            if isinstance(failure, CommitFailedError):
                log.info("consumer %s: commit refused, the group rebalanced; re-joining",
                         self.name)
                return True
            log.error("consumer %s: a batch failed; reading it again", self.name,
                      exc_info=failure)
            return False

    async def close(self) -> None:
        await self._notices.close()

    # -- batches -------------------------------------------------------------------

    async def apply_records(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply (or hold, or dead-letter) ``records`` in order, one transaction per batch.

        Messages that are not events are dead-lettered first: they belong to no stream.
        """
        items: list[Incoming] = []
        for record in records:
            try:
                items.append(inbox.peek(record, self.handlers))
            except Exception as error:  # any malformed message: never let it stop the partition
                await self._dead_letter_undecodable(record, error)
        if not items:
            return
        passed: set[str] = set()
        async with self._locked(inbox.streams_of(items)):
            await self._apply_items(items, passed)
            for stream in sorted(passed & self._held_streams):
                await self._release_held(stream)

    async def _apply_items(self, items: list[Incoming], passed: set[str]) -> None:
        """Batches of ``items``; a batch whose handler failed is split at the failing event.
        ``passed`` gets the streams whose head moved (their held events may follow)."""
        while items:
            guard = await self._read_guard(items)
            pending = []
            for item in items:  # certain repeats and held events go without a transaction
                known = guard.known(item.stream_id, item.version)
                if known is None:
                    pending.append(item)
                else:
                    self.outcomes[known] += 1
            if not pending:
                return
            size = self.settings.batch_events
            batch, items = pending[:size], pending[size:]
            failed = await self._apply_batch(batch, guard, passed)
            if failed is not None:
                await self._apply_items(batch[:failed], passed)
                alone = batch[failed]
                outcome = await self._handle_one(self._envelope(alone), alone.record.topic)
                if outcome not in (Outcome.HELD, Outcome.DEAD):  # a dead letter blocks its stream
                    passed.add(alone.stream_id)
                items = batch[failed + 1:] + items

    async def _read_guard(self, items: Sequence[Incoming]) -> inbox.Guard:
        """The order guard of a batch's streams, in one read (before any write transaction)."""
        handled = [item.envelope.event_id for item in items if item.envelope is not None]
        async with self.db.read() as conn:
            return await inbox.read_guard(conn, self.name, inbox.streams_of(items), handled)

    async def _apply_batch(self, items: Sequence[Incoming], guard: inbox.Guard,
                           passed: set[str]) -> int | None:
        """One transaction for ``items``; the index of a failing handler's event (all rolled
        back), else None. A failure of the bulk writes that will not pass by itself (another
        member applied the same event meanwhile) splits at the first event (index 0)."""
        batch = inbox.Batch(self.name, guard)
        outcomes = [self._decide(batch, item) for item in items]
        handled = [item for item, outcome in zip(items, outcomes, strict=True) if outcome is None]
        work = BatchWork(self._decode_ahead(handled),
                         [item.envelope for item in handled if item.envelope is not None])
        try:
            async with self.db.transaction() as conn:
                for index, (item, outcome) in enumerate(zip(items, outcomes, strict=True)):
                    if outcome is None:
                        assert item.envelope is not None
                        try:
                            await self._run_handler(conn, item.envelope,
                                                    self.handlers[item.event_type], work=work,
                                                    headers=item.record.headers)
                        except Exception as error:
                            raise _HandlerFailed(index) from error
                await work.finish()
                await batch.write(conn)
        except _HandlerFailed as failed:
            item = items[failed.index]
            log.info("consumer %s: %s %s failed in a batch (%r); applying it alone", self.name,
                     item.event_type, item.envelope and item.envelope.event_id,
                     failed.__cause__)
            return failed.index
        except Exception as error:
            if _is_transient(error):
                raise
            log.warning("consumer %s: a batch failed (%r); applying one by one", self.name, error)
            return 0
        for outcome in outcomes:
            self.outcomes[Outcome.APPLIED if outcome is None else outcome] += 1
        passed.update(batch.advanced)  # not |= with the keys: that makes a new set
        self._held_streams |= {item.stream_id for item, _ in batch.holds}
        return None

    def _decide(self, batch: inbox.Batch, item: Incoming) -> Outcome | None:
        """The guard's answer for ``item`` (None: its handler runs), decided before the
        batch's first handler so that ``BatchWork`` knows the events that will be handled.
        An event to handle moves its stream's head in memory as if applied already: the
        events after it are decided on it, and a handler that fails discards the decisions
        with the transaction (the parts of a split batch read the guard again)."""
        outcome = batch.decide(item, item.event_type in self.handlers)
        if outcome is None:
            batch.applied(item)
        return outcome

    def _decode_ahead(self, items: Sequence[Incoming]) -> dict[uuid.UUID, DomainEvent]:
        """The events of ``items`` (to be handled), decoded (one that fails to decode is
        left out: its handler's turn decodes it again and fails there, as that event's)."""
        decoded = {}
        for item in items:
            if item.envelope is not None:
                with contextlib.suppress(Exception):
                    decoded[item.envelope.event_id] = self.registry.decode(item.envelope)
        return decoded

    def _envelope(self, item: Incoming) -> Envelope:
        return item.envelope or Envelope.from_wire(item.record.value)

    @contextlib.asynccontextmanager
    async def _locked(self, streams: Collection[str]) -> AsyncIterator[None]:
        """The locks of all ``streams``, taken in stripe order (so two batches never deadlock)."""
        async with contextlib.AsyncExitStack() as stack:
            for stripe in sorted({self._stripe(stream) for stream in streams}):
                await stack.enter_async_context(self._locks[stripe])
            yield

    def _stripe(self, stream_id: str) -> int:
        return zlib.crc32(stream_id.encode("utf-8")) % _STRIPES

    def _lock(self, stream_id: str) -> asyncio.Lock:
        return self._locks[self._stripe(stream_id)]

    # -- one event -------------------------------------------------------------------

    async def handle(self, envelope: Envelope, *, origin_topic: str = "") -> Outcome:
        """Apply one event exactly once (or hold or dead-letter it), then the held events it
        lets through. A stream's events are handled one at a time in this process."""
        async with self._lock(envelope.stream_id):
            outcome = await self._handle_one(envelope, origin_topic)
            if outcome is not Outcome.HELD and envelope.stream_id in self._held_streams:
                await self._release_held(envelope.stream_id)
        return outcome

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

        An older version is a repeat. A version beyond the next one, or one behind an
        unresolved dead letter, is held in this transaction (so its offset may be
        committed). Only a redrive applies an event behind the head: a dead letter of
        this group, taken from its table.
        """
        async with self.db.transaction() as conn:
            if redrive:
                return await self._apply_dead_letter(conn, envelope, handler)
            head, in_inbox, blocked = await inbox.guard_one(conn, self.name, envelope)
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

    async def _apply_dead_letter(self, conn: AsyncConnection, envelope: Envelope,
                                 handler: Handler | None) -> Outcome:
        """A redriven dead letter: applied once, and only after any dead letter before it."""
        if not await dlq.is_unresolved(conn, self.name, envelope.event_id):
            return Outcome.DUPLICATE  # resolved meanwhile
        if await dlq.is_blocked(conn, self.name, envelope):
            return Outcome.HELD  # stays dead until the one before it is resolved
        if handler is not None and not await inbox.contains(conn, self.name, envelope.event_id):
            await self._run_handler(conn, envelope, handler)
        await dlq.mark_redriven(conn, self.name, envelope.event_id)
        return Outcome.REDRIVEN

    async def _run_handler(self, conn: AsyncConnection, envelope: Envelope, handler: Handler,
                           *, work: BatchWork | None = None,
                           headers: Sequence[tuple[str, bytes]] | None = None) -> None:
        """Decode and apply, under the event's correlation id (and trace: ``headers``' own
        ``traceparent`` when given). In a batch (``work``) the shared writes and the inbox
        row wait for the batch's end; alone, they are written now."""
        event = (work and work.decoded(envelope.event_id)) or self.registry.decode(envelope)
        alone = work is None
        work = work or BatchWork({envelope.event_id: event}, [envelope])
        with tracing.consuming(envelope, self.name, headers):
            await handler(Delivery(conn, envelope, event, self.name, work))
        if alone:
            await work.finish()
            await inbox.record(conn, self.name, envelope.event_id)

    async def _hold(self, conn: AsyncConnection, envelope: Envelope, origin_topic: str) -> Outcome:
        await held.hold(conn, self.name, envelope, origin_topic)
        self._held_streams.add(envelope.stream_id)
        return Outcome.HELD

    async def _advance(self, conn: AsyncConnection, envelope: Envelope) -> None:
        """Move the stream's head to this event's version (never backwards)."""
        await inbox.advance(conn, self.name, {envelope.stream_id: envelope.stream_version})

    async def _release_held(self, stream_id: str) -> None:
        """Apply the held events that follow the stream's head, in version order.

        The one mechanism behind every "the stream may go on now": the missing
        version arrived, a gap was healed, a dead letter was redriven or discarded.
        Stops at a gap, or at an event held again (behind a dead letter). The caller
        holds the stream's lock.
        """
        while True:
            async with self.db.transaction() as conn:
                head = await inbox.head_of(conn, self.name, stream_id)
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
            await self._notices.announce(envelope.stream_id.encode(), wire.encode("utf-8"),
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
        await self._notices.announce(record.key, record.value, record.topic, reason, 0)
        key = (record.key or b"").decode("utf-8", "replace")
        async with self.db.transaction() as conn:
            await dlq.record(conn, self.name, event_id=event_id, stream_id="", stream_version=0,
                             event_type=dlq.UNDECODABLE, reason=f"{reason} (key {key!r})",
                             attempts=0, origin_topic=record.topic,
                             wire=(record.value or b"").decode("utf-8", "replace"))
        self.outcomes[Outcome.DEAD] += 1
        return Outcome.DEAD

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
            self.kafka, self.topics, {g.stream_id: set(g.missing) for g in gaps},
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
