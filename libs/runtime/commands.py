"""The one command path: how every command and every reaction changes an aggregate.

A service says *what* to decide; this module says *how* it runs:

- an ``Aggregate`` describes one kind of stream once: its stream id, stream type,
  empty state, ``evolve`` and the read-model hook (``project``) its events move;
- a ``Unit`` is one unit of work on one open transaction: ``load`` (through
  ``libs.runtime.aggregate.load``), ``save`` (append at the loaded version, fold,
  project) and ``change`` (load -> decide -> save);
- ``run`` runs a command in a write transaction of its own, from scratch again
  (fresh transaction, fresh load) when a stream moved on meanwhile
  (``ConcurrencyError``);
- ``react`` runs a reaction inside the consumer's transaction
  (``delivery.conn``): it opens none and never retries by itself, the consumer
  already retries the whole delivery. Event ids are deterministic there
  (``delivery.event_ids``), so a repeated event appends nothing new.

In a consumer batch (``libs.messaging.work.BatchWork``) the reactions share what
holds until the batch's transaction ends, and lose it with it: the streams they
appended to (``Unit.load``) and their documents (``Unit.document`` and
``Unit.put_document``: read once, or all ahead in one statement, ``read_ahead``; written
in one upsert after the batch's last handler). A command reads and writes at once.

HTTP routes reach ``run`` through the dependencies in ``libs.runtime.idempotency``
(``Command``, ``IdempotentCommand``), which add the ``Idempotency-Key`` handling.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent, EventMetadata
from libs.events.codec import parse_json
from libs.events.envelope import Envelope
from libs.runtime import documents
from libs.runtime.aggregate import load_head, retry_on_conflict
from libs.runtime.ids import new_id
from libs.store.snapshots import SnapshotPolicy, save_if_due
from libs.store.store import Head

if TYPE_CHECKING:
    from libs.messaging.consumer import Delivery, Handler
    from libs.runtime.auth import Principal
    from libs.runtime.host import ServiceContext

K = TypeVar("K")
S = TypeVar("S")
T = TypeVar("T")
L = TypeVar("L", bound="Loaded[Any, Any]")


@dataclass(frozen=True)
class Loaded(Generic[K, S]):
    """An aggregate as loaded for a decision: its key, state and version (0: no stream yet).

    A service may subclass it to carry what its decisions also need (credit: the
    cancelled orders); ``Unit.save`` keeps the subclass and its fields.
    """

    aggregate: Aggregate[K, S]
    key: K
    state: S
    version: int
    #: What the last ``Unit.save`` appended, and the document its ``project`` hook wrote.
    stored: tuple[Envelope, ...] = ()
    document: dict[str, Any] | None = None
    #: The stream's head as this transaction last saw it (its load or its last save), so a
    #: save need not read it again (``EventStore.append``). A subclass built from a loaded
    #: one passes it on.
    head: Head | None = None
    #: After a save: the aggregate's document (JSON text) as it stood before the saved events,
    #: when the load read it beside them (``Aggregate.document``): where the save's ``project``
    #: hook starts from (``Unit.document_before``) instead of reading it again.
    document_before: str | None = None


_SAVED_IN_BATCH = "libs.runtime.commands:saved"
"""Key of a consumer batch's shared ``{stream id: (Loaded, head's stream hash)}`` of the streams
it appended to."""

_REMEMBER_AFTER_BATCH = "libs.runtime.commands:remember"
"""Key of a consumer batch's ``{(policy id, stream id): (policy, stream id, version, head's stream
hash, state)}``: what its saves remember once its last handler has run (``Unit._remember``)."""

Remembering = dict[tuple[int, str], tuple[SnapshotPolicy[Any], str, int, str, Any]]


async def _remember_all(batch: Remembering) -> None:
    for policy, stream_id, version, head, state in batch.values():
        policy.remember(stream_id, version, head, state)


_DOCUMENTS_IN_BATCH = "libs.runtime.commands:documents"
"""Key of a consumer batch's shared ``documents.Documents``: the documents its reactions read
and write through ``Unit.document`` and ``Unit.put_document``."""
_ONCE_IN_BATCH = "libs.runtime.commands:once"
"""Key of a consumer batch's shared set of what ``Unit._once_in_batch`` was asked about."""
_READ_AHEAD = "libs.runtime.commands:read ahead"
"""``Unit._once_in_batch`` key of the batch's one ``read_ahead``."""

Project = Callable[["Unit", Any, Sequence[DomainEvent], Any], Awaitable["dict[str, Any] | None"]]
"""``(unit, loaded after the events, the events, the state before them)``: rewrite the read
models; answers the aggregate's own document when it wrote one (``Loaded.document``), so the
command need not read it back."""


async def _no_read_model(unit: Unit, loaded: Any, events: Sequence[DomainEvent], before: Any) -> None:
    return None


Fold = Callable[["dict[str, Any] | None", DomainEvent, "Unit"], "dict[str, Any] | None"]


def folded_document(kind: str, fold: Fold, *, ref: str | None = None) -> Project:
    """A ``project`` hook for a document folded event by event from the stored one.

    The document (``documents`` of ``kind``, id = the aggregate's key) is read (with the
    load, when the aggregate declares it: ``Aggregate.document``),
    ``fold(document, event, unit)`` applied to each new event and written back
    with its ``partner_id`` and ``status``; the hook answers it. A stream the events began
    has no document yet: it is not read (``fold`` starts from ``None``).
    """

    async def project(unit: Unit, loaded: Any, events: Sequence[DomainEvent], before: Any
                      ) -> dict[str, Any]:
        doc = await unit.document_before(loaded, kind) if loaded.version > len(events) else None
        for event in events:
            doc = fold(doc, event, unit)
        if doc is None:
            raise LookupError(f"{kind} {loaded.key} has no document")
        await documents.put(unit.conn, kind, loaded.key, doc, partner_id=doc.get("partner_id"),
                            status=doc.get("status"), ref_id=doc.get(ref) if ref else None)
        return doc

    return project


@dataclass(frozen=True)
class Aggregate(Generic[K, S]):
    """One kind of aggregate, declared once per service next to its load/save users."""

    stream_type: str
    stream_id: Callable[[K], str]
    initial: Callable[[K], S]
    evolve: Callable[[S, DomainEvent], S]
    project: Project = _no_read_model
    document: str | None = None
    """The kind of the aggregate's own document (its id: the key), which ``project`` folds
    the saved events into: every load reads it in the statement that reads the events, so
    the save's hook need not read it again (``Unit.document_before``). Only for a document
    written in the same transaction as every event of its stream: the load's one statement
    then reads the document that goes with the head it reads."""
    snapshots: SnapshotPolicy[S] | None = None
    """For a stream that lives as long as a partner, a product or a program: loads start
    from a snapshot and fold only the events after it (``libs.store.snapshots``). For one that
    a few commands and reactions load one after the other (an order, a shipment),
    ``SnapshotPolicy.in_memory``: loads start from the state the last save or load in the
    process left. A save remembers the state it folded either way (``Unit.save``)."""


@dataclass(frozen=True)
class Unit:
    """One command or reaction at work: the service, the open transaction, who acts and how.

    ``event_ids`` and ``new_id`` are deterministic in a reaction (derived from the
    event reacted to) and fresh in a command.
    """

    ctx: ServiceContext
    conn: AsyncConnection
    meta: EventMetadata
    principal: Principal | None = None
    delivery: Delivery | None = None

    @property
    def actor(self) -> str:
        return self.meta.actor

    def today(self) -> date:
        return self.ctx.today()

    def event_ids(self, count: int, salt: str = "") -> list[uuid.UUID] | None:
        return self.delivery.event_ids(count, salt) if self.delivery is not None else None

    def new_id(self, prefix: str) -> str:
        """A new id; in a reaction the same one every time the event is handled."""
        ids = self.event_ids(1, prefix)
        return new_id(prefix, ids[0]) if ids else new_id(prefix)

    @property
    def envelope(self) -> Envelope:
        """The envelope of the event reacted to (reactions only)."""
        assert self.delivery is not None, "a command reacts to no event"
        return self.delivery.envelope

    async def load(self, aggregate: Aggregate[K, S], key: K) -> Loaded[K, S]:
        """The aggregate now. In a consumer batch, a stream this transaction appended to is
        not read again: after an append nobody else can append to it before the commit (the
        version it would take is ours), so the state saved is the state."""
        saved = self._saved_in_batch()
        hit = saved.get(aggregate.stream_id(key)) if saved is not None else None
        if hit is not None and hit[0].aggregate is aggregate:
            return hit[0]
        return await read(self.ctx, self.conn, aggregate, key)

    def _saved_in_batch(self) -> dict[str, tuple[Loaded[Any, Any], str | None]] | None:
        return self.kept_for_batch(_SAVED_IN_BATCH, dict)

    def kept_for_batch(self, key: Any, make: Callable[[], T], *,
                       flush: Callable[[T], Awaitable[object]] | None = None) -> T | None:
        """The consumer batch's one ``make()`` under ``key`` (``BatchWork.shared``, ``flush``
        after its last handler): state that lives and dies with the batch's transaction. None
        outside a batch (a command)."""
        work = self.delivery.work if self.delivery is not None else None
        return work.shared(key, make, flush=flush) if work is not None else None

    def _once_in_batch(self, key: Any) -> bool:
        """True the first time ``key`` is asked about in this consumer batch (and always outside
        one): for what holds until the transaction ends, such as a transaction-scoped lock."""
        seen: set[Any] | None = self.kept_for_batch(_ONCE_IN_BATCH, set)
        if seen is None:
            return True
        if key in seen:
            return False
        seen.add(key)
        return True

    def batch_documents(self) -> documents.Documents | None:
        """In a consumer batch, its one unit of work over documents (``documents.Documents``,
        unlocked: whoever writes a document holds the lock of what it derives from), written
        in one upsert after the batch's last handler; None in a command."""
        work = self.delivery.work if self.delivery is not None else None
        if work is None:
            return None
        return work.shared(_DOCUMENTS_IN_BATCH, lambda: documents.Documents(self.conn, lock=False),
                           flush=documents.Documents.flush)

    async def read_ahead(self, keys: ReadAhead) -> None:
        """In a consumer batch, read the stored documents among ``keys(the batch's events)``
        in one statement, once per batch, ahead of the reactions that will ask for them
        (``document``). Outside a batch it does nothing."""
        work = self.delivery.work if self.delivery is not None else None
        docs = self.batch_documents()
        if work is not None and docs is not None and self._once_in_batch(_READ_AHEAD):
            await docs.load(dict.fromkeys(keys(work.events)))

    async def document(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        """A document as this transaction left it: in a consumer batch read once (or ahead,
        ``read_ahead``) and then kept with the batch's own writes; in a command, read now.
        The caller gets a copy of its own to change."""
        docs = self.batch_documents()
        if docs is None:
            return await documents.get(self.conn, kind, doc_id)
        body = await docs.get(kind, doc_id)
        return dict(body) if body is not None else None

    async def put_document(self, kind: str, doc_id: str, body: dict[str, Any], *,
                           partner_id: str | None = None, status: str | None = None,
                           ref_id: str | None = None) -> None:
        """Write a document (``documents.put``); in a consumer batch it is kept and written with
        the batch's others in one upsert before the commit (a failure anywhere leaves none)."""
        docs = self.batch_documents()
        if docs is None:
            await documents.put(self.conn, kind, doc_id, body, partner_id=partner_id, status=status,
                                ref_id=ref_id)
        else:
            docs.put(kind, doc_id, body, partner_id=partner_id, status=status, ref_id=ref_id)

    def document_written(self, kind: str, doc_id: str, body: dict[str, Any]) -> None:
        """``body`` was just written straight to the table (``documents.put``: a read by an
        index later in the batch must find it there): the batch's later ``document`` reads
        answer it too. Nothing to do in a command."""
        docs = self.batch_documents()
        if docs is not None:
            docs.written(kind, doc_id, body)

    def documents_held(self, kind: str) -> list[documents.Held]:
        """``(id, body, partner_id, status, ref_id)`` of the documents of ``kind`` this consumer
        batch wrote (``put_document``) and holds back until it ends: a read by an index or a
        list goes to the table, which does not have them yet, so it must ask these too. Empty
        in a command (its writes are sent at once)."""
        docs = self.batch_documents()
        return docs.changed(kind) if docs is not None else []

    async def save(self, loaded: L, events: Sequence[DomainEvent], *, salt: str = "",
                   event_ids: Sequence[uuid.UUID] | None = None,
                   meta: EventMetadata | None = None) -> L:
        """Append ``events`` at the loaded version, fold them in, rewrite the read models.

        A stale version raises ``ConcurrencyError``: ``run`` starts the command
        again, the consumer the reaction.
        """
        if not events:
            return loaded
        aggregate = loaded.aggregate
        stream_id = aggregate.stream_id(loaded.key)
        ids = event_ids if event_ids is not None else self.event_ids(len(events), salt)
        saved = self._saved_in_batch()
        written = saved.get(stream_id) if saved is not None else None
        stored = await self.ctx.store.append(
            stream_id, aggregate.stream_type, loaded.version, list(events),
            meta or self.meta, conn=self.conn, event_ids=ids,
            head=(Head(written[0].version, written[1]) if written is not None and written[1]
                  else loaded.head))
        state = loaded.state
        for event in events:
            state = aggregate.evolve(state, event)
        seen = loaded.head  # as the load read it: with the document, when the aggregate declares one
        after = replace(loaded, state=state, version=loaded.version + len(events),
                        stored=tuple(stored), document=None,
                        head=Head(loaded.version + len(events), stored[-1].stream_hash),
                        document_before=seen.document if seen is not None and seen.version == loaded.version
                        else None)
        if saved is not None:
            saved[stream_id] = (Loaded(aggregate, loaded.key, state, after.version),
                                stored[-1].stream_hash)
        if aggregate.snapshots is not None:
            await save_if_due(self.conn, stream_id, state, after.version, aggregate.snapshots)
            self._remember(aggregate.snapshots, stream_id, after)
        document = await aggregate.project(self, after, events, loaded.state)
        return replace(after, document=document) if document is not None else after

    def _remember(self, policy: SnapshotPolicy[Any], stream_id: str, saved: Loaded[Any, Any]) -> None:
        """Remember the state as this save folded it (``SnapshotPolicy.remember``), so the next
        load in the process reads only the event it ends at (to check its ``stream_hash``) and
        what came after, instead of decoding and folding this save's events again.

        A command remembers at once; a consumer batch once its last handler has run (a handler
        failing, on PostgreSQL's ``ConcurrencyError`` say, rolls the whole batch back). Should
        the transaction roll back all the same, its event is not in the stream (or another is,
        with another hash) and the load ignores the memory (``libs.runtime.aggregate``): a
        slower load, the same state."""
        head = saved.stored[-1].stream_hash if saved.stored else None
        if head is None:
            return
        batch: Remembering | None = self.kept_for_batch(_REMEMBER_AFTER_BATCH, dict,
                                                        flush=_remember_all)
        if batch is None:
            policy.remember(stream_id, saved.version, head, saved.state)
        else:
            batch[id(policy), stream_id] = (policy, stream_id, saved.version, head, saved.state)

    async def document_before(self, saved: Loaded[Any, Any], kind: str) -> dict[str, Any] | None:
        """For a ``project`` hook: the aggregate's document of ``kind`` (id: its key) as it stood
        before the events ``saved`` was just saved with. Read with the load when the aggregate
        declares it (``Aggregate.document``), else read now."""
        if saved.document_before is not None:
            return parse_json(saved.document_before)
        return await documents.get(self.conn, kind, str(saved.key))

    async def change(self, aggregate: Aggregate[K, S], key: K,
                     decide: Callable[[S], Sequence[DomainEvent]], *, salt: str = "") -> Loaded[K, S]:
        """Load, decide on the current state, save what was decided."""
        loaded = await self.load(aggregate, key)
        return await self.save(loaded, decide(loaded.state), salt=salt)


async def read(ctx: ServiceContext, conn: AsyncConnection, aggregate: Aggregate[K, S], key: K
               ) -> Loaded[K, S]:
    """Load an aggregate on any connection (a read needs no ``Unit``)."""
    state, version, head = await load_head(conn, ctx.store, ctx.registry, aggregate.stream_id(key),
                                           aggregate.initial(key), aggregate.evolve,
                                           snapshots=aggregate.snapshots,
                                           document=None if aggregate.document is None
                                           else (aggregate.document, str(key)))
    return Loaded(aggregate, key, state, version, head=head)


async def transact(ctx: ServiceContext, attempt: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """``attempt`` in a write transaction of its own, again from scratch on ``ConcurrencyError``."""

    async def once() -> T:
        async with ctx.db.transaction() as conn:
            return await attempt(conn)

    return await retry_on_conflict(once)


async def run(ctx: ServiceContext, meta: EventMetadata, command: Callable[[Unit], Awaitable[T]],
              principal: Principal | None = None) -> T:
    """Run a command (no HTTP: background tasks, and routes through ``libs.runtime.idempotency``)."""
    return await transact(ctx, lambda conn: command(Unit(ctx, conn, meta, principal)))


Reaction = Callable[[Unit, Any], Awaitable[None]]
"""``(unit, event)``: a reaction to one event, in the consumer's transaction."""


ReadAhead = Callable[[Sequence[DomainEvent]], Iterable[documents.Key]]
"""The documents a batch's reactions will ask for by key (``Unit.read_ahead``)."""


async def react(ctx: ServiceContext, reaction: Reaction, delivery: Delivery, *,
                read_ahead: ReadAhead | None = None) -> None:
    """Run a reaction in the consumer's transaction, with the delivery's metadata and ids."""
    unit = Unit(ctx, delivery.conn, delivery.meta, delivery=delivery)
    if read_ahead is not None:
        await unit.read_ahead(read_ahead)
    await reaction(unit, delivery.event)


def reactions(ctx: ServiceContext, table: Mapping[str, Reaction], *,
              read_ahead: ReadAhead | None = None) -> dict[str, Handler]:
    """A service's reaction table bound to its context, as the consumer wants it; with
    ``read_ahead``, the first reaction of a batch reads the documents it names first."""
    return {event_type: partial(react, ctx, reaction, read_ahead=read_ahead)
            for event_type, reaction in table.items()}
