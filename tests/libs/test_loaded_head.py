"""An append after a load in the same transaction takes the head from the load (both databases).

The load already read the stream's last event: its version, its hash and (PostgreSQL) the
transaction that wrote it. The append then sends no head read of its own, and every rule
the head read kept still holds: the chain and a clash with a concurrent append (the commit
order on PostgreSQL: ``test_event_store``'s commit-order test, with the head from the load).
"""

from __future__ import annotations

import pytest

from libs.events.base import EventMetadata
from libs.store.database import Database
from libs.store.errors import ConcurrencyError
from libs.store.store import EventStore
from tests.libs.sample_events import CounterIncremented
from tests.service_support import Statements

META = EventMetadata(actor="test")
HEAD_READ = "ORDER BY version DESC LIMIT 1"


def bump() -> CounterIncremented:
    return CounterIncremented(amount_minor=1)


async def test_a_loaded_head_saves_the_head_read_and_chains_the_same(db: Database) -> None:
    store = EventStore(db)
    await store.append("s", "counter", 0, [bump(), bump()], META)
    with Statements(db) as sent:
        async with db.transaction() as conn:
            tail, head = await store.load_tail(conn, "s")
            assert head is not None and (head.version, head.stream_hash) == (2, tail[-1].stream_hash)
            [third] = await store.append("s", "counter", 2, [bump()], META, conn=conn, head=head)
    assert sent.having(HEAD_READ) == []
    async with db.transaction() as conn:  # the same append the old way reads the head
        with Statements(db) as old_way:
            [fourth] = await store.append("s", "counter", 3, [bump()], META, conn=conn)
    assert len(old_way.having(HEAD_READ)) == 1
    assert third.stream_hash == third.chained_hash(tail[-1].stream_hash)
    assert fourth.stream_hash == fourth.chained_hash(third.stream_hash)
    assert [e.stream_version for e in await store.load("s")] == [1, 2, 3, 4]


async def test_an_append_between_the_load_and_the_save_still_clashes(db: Database) -> None:
    store = EventStore(db)
    await store.append("s", "counter", 0, [bump()], META)
    async with db.transaction() as conn:
        _, head = await store.load_tail(conn, "s")
    await store.append("s", "counter", 1, [bump()], META)  # someone else, meanwhile
    with pytest.raises(ConcurrencyError):
        async with db.transaction() as conn:
            await store.append("s", "counter", 1, [bump()], META, conn=conn, head=head)
    assert [e.stream_version for e in await store.load("s")] == [1, 2]
