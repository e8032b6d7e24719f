"""Snapshots: the folded state of a long-lived stream at a version, so a load folds only what came after.

A snapshot is only a cache. Deleting every row of ``snapshots`` changes no
answer: ``libs.runtime.aggregate.load`` then folds the stream from its first
event, as it would without snapshots.

Never misread
-------------
Each snapshot carries a *fingerprint*: a hash of the aggregate's declared shape
(``shape``, e.g. ``"credit.account/2"``, bumped whenever the state class or its
codec changes) and of the schema version of every event type the aggregate
folds. A snapshot whose fingerprint is not the running code's is ignored (and
replaced by the next one taken), so a state written under an older event schema
or an older state class is never decoded.

When one is taken
-----------------
``save_if_due`` writes a snapshot, in the caller's transaction (the one that
appended the events it covers), when the stream has none or a stale one, or
when enough events were appended since: at least ``every``, and at least an
eighth as many as the state has parts (``size(state)``) when the policy
measures it. A threshold on the distance
rather than "at each multiple of N" because one command appends several events
at once and can step over a multiple.

Why the size: an aggregate whose state grows (an account with many open
invoices) costs more to encode the larger it is. Spacing its snapshots by its
size keeps the cost of taking them, spread over the events between two, the
same per event at any size, and keeps them off all but a rare command. Why an
eighth: encoding one part costs about a tenth of decoding and folding one
event (credit's account: ~12 µs against ~75-100 µs), so a snapshot then adds
about one event's fold to each event appended, and a load in a process that
has not seen the stream yet (it decodes the snapshot and folds what came
after) costs about as much for the tail as for the snapshot: proportional to
the state, once. Every load after that starts from the remembered state (below).

Remembered in the process
-------------------------
A policy also remembers, per stream, the last state it loaded together with
that version's ``stream_hash`` (bounded, least recently used first out). A load
that finds the event at that version still carrying that hash reuses the state
and folds only the events after it: the hash chains every earlier event of the
stream, so the same hash means the same history, even if the transaction that
wrote it rolled back and the same version was written again by another. With a
different or missing hash the memory is ignored and the stored snapshot is read.

It remembers as well, per stream, the version of the stored snapshot it last read
or took, so that ``save_if_due`` need not read the snapshot's version on every
append to know one is not due. That memory only decides whether to *write* one:
a snapshot is always read with its fingerprint checked (``latest``). When it is
stale (another replica took a snapshot since, a transaction that took one rolled
back, the rows were deleted), a snapshot is taken a little early or late: loads
fold a few more events, and no answer changes.

Only remembered
---------------
``SnapshotPolicy.in_memory`` is a policy that stores no snapshot: for a stream that lives
as long as one order or one shipment, which a few commands and reactions load one after the
other in the same process, soon after it was saved. Its loads start from the remembered
state or fold the stream from its first event; ``latest`` and ``save_if_due`` do nothing.

A save remembers the state it folded (``libs.runtime.commands.Unit.save``), so the next load
in the process decodes and folds only what came after it.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent, format_timestamp, utc_now
from libs.events.codec import canonical_json, parse_json
from libs.store.schema import snapshots as snapshots_table
from libs.store.sql import Statement, upsert

S = TypeVar("S")

EVERY = 200
"""Events between two snapshots of a stream: a load folds fewer than about this many
events (well under a millisecond each) and a snapshot's encode is paid once per as many."""

SIZE_SHARE = 8
"""A growing state is snapshotted at most once per ``size(state) // SIZE_SHARE`` events."""

REMEMBERED = 64
"""Streams whose last loaded state a policy keeps in memory."""


REMEMBERED_ONLY = 1024
"""Streams an ``in_memory`` policy keeps: an order is loaded again by the reactions to what
the other services did with it, after as many other orders as are in flight meanwhile."""


def _unstored(_: Any) -> Any:
    raise AssertionError("an in-memory policy stores no snapshot")


@dataclass(frozen=True, slots=True)
class Remembered(Generic[S]):
    version: int
    stream_hash: str
    state: S


class SnapshotPolicy(Generic[S]):
    """How one aggregate is snapshotted: its shape, its codec and how often.

    ``encode`` must turn the state into JSON values deterministically (integers
    for money, ISO strings for dates); ``decode`` must give back an equal state.
    ``events`` are the event classes the aggregate folds: their schema versions
    are part of the fingerprint. ``size``, for a state that grows, counts its parts
    (see "When one is taken").
    """

    def __init__(self, shape: str, events: Iterable[type[DomainEvent]], encode: Callable[[S], Any],
                 decode: Callable[[Any], S], *, every: int = EVERY, remembered: int = REMEMBERED,
                 size: Callable[[S], int] | None = None) -> None:
        if every < 1:
            raise ValueError("every must be at least 1")
        self.shape = shape
        self.encode = encode
        self.decode = decode
        self.every = every
        self.size = size
        schemas = sorted(f"{cls.TYPE}:{cls.VERSION}" for cls in events)
        self.fingerprint = hashlib.sha256("\n".join([shape, *schemas]).encode()).hexdigest()
        self.stores = True
        """False for a policy that only remembers (``in_memory``): no snapshot is read or taken."""
        self._capacity = remembered
        self._memory: OrderedDict[str, Remembered[S]] = OrderedDict()
        self._stored: OrderedDict[str, int] = OrderedDict()

    @classmethod
    def in_memory(cls, shape: str, *, remembered: int = REMEMBERED_ONLY) -> SnapshotPolicy[S]:
        """A policy that only remembers the last states loaded or saved (see "Only remembered")."""
        policy: SnapshotPolicy[S] = cls(shape, (), _unstored, _unstored, remembered=remembered)
        policy.stores = False
        return policy

    def spacing(self, state: S) -> int:
        """Events between two snapshots of a stream in this state."""
        return max(self.every, self.size(state) // SIZE_SHARE) if self.size is not None else self.every

    def remembered(self, stream_id: str) -> Remembered[S] | None:
        return self._memory.get(stream_id)

    def remember(self, stream_id: str, version: int, stream_hash: str, state: S) -> None:
        if self._capacity <= 0:
            return
        self._memory[stream_id] = Remembered(version, stream_hash, state)
        self._memory.move_to_end(stream_id)
        while len(self._memory) > self._capacity:
            self._memory.popitem(last=False)

    def stored(self, stream_id: str) -> int | None:
        """The version of the stream's stored snapshot as last read or taken here, if known."""
        return self._stored.get(stream_id)

    def note_stored(self, stream_id: str, version: int) -> None:
        if self._capacity <= 0:
            return
        self._stored[stream_id] = version
        self._stored.move_to_end(stream_id)
        while len(self._stored) > self._capacity:
            self._stored.popitem(last=False)

    def forget(self) -> None:
        """Drop every remembered state and snapshot version (the stored snapshots stay)."""
        self._memory.clear()
        self._stored.clear()


# Every load and save of a snapshotted stream runs one of these (``libs.store.sql.Statement``).
_LATEST = Statement("SELECT version, fingerprint, state FROM snapshots WHERE stream_id = $1")
_TAKEN = Statement("SELECT version, fingerprint FROM snapshots WHERE stream_id = $1")


async def latest(conn: AsyncConnection, stream_id: str, policy: SnapshotPolicy[S]) -> tuple[int, S] | None:
    """The stream's stored snapshot as (version, state), or None when there is none or it is stale."""
    if not policy.stores:
        return None
    rows = await _LATEST.fetch(conn, stream_id)
    row = rows[0] if rows else None
    if row is None or row[1] != policy.fingerprint:
        return None
    policy.note_stored(stream_id, row[0])
    return row[0], policy.decode(parse_json(row[2]))


async def save_if_due(conn: AsyncConnection, stream_id: str, state: S, version: int,
                      policy: SnapshotPolicy[S]) -> bool:
    """Take a snapshot of ``state`` at ``version`` if one is due (see module doc); True if taken.

    Call it in the transaction that appended the events up to ``version``, after the append.
    The stored snapshot's version is read only when the policy does not remember it (see
    "Remembered in the process").
    """
    if version <= 0 or not policy.stores:
        return False
    known = policy.stored(stream_id)
    if known is None or known > version:  # a memory ahead of the stream is of another history
        rows = await _TAKEN.fetch(conn, stream_id)
        known = rows[0][0] if rows and rows[0][1] == policy.fingerprint else None
    if known is not None and version - known < policy.spacing(state):
        policy.note_stored(stream_id, known)
        return False
    await upsert(conn, snapshots_table, {
        "stream_id": stream_id, "version": version, "fingerprint": policy.fingerprint,
        "state": canonical_json(policy.encode(state)).decode("utf-8"),
        "taken_at": format_timestamp(utc_now()),
    }, ["stream_id"])
    policy.note_stored(stream_id, version)
    return True
