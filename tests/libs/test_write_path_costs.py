"""What the shared write path skips to save CPU, and that skipping it changes no answer:
timestamps without ``strftime``, loads without validating the store's own events again, and
messages a consumer does not handle passed without parsing them."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from libs.events.base import format_timestamp, parse_timestamp
from libs.events.registry import EventRegistry
from libs.messaging import inbox
from libs.messaging.kafka import end_offsets
from libs.runtime.aggregate import load
from libs.store.database import Database
from libs.store.store import EventStore
from tests.libs.sample_events import CounterIncremented, registry
from tests.libs.test_relay_consumer import META, Harness, _harness, append_many


def test_a_timestamp_is_utc_with_microseconds_in_fixed_width() -> None:
    moment = datetime(2026, 11, 28, 23, 30, 5, 1200, tzinfo=timezone(timedelta(hours=2)))
    assert format_timestamp(moment) == "2026-11-28T21:30:05.001200Z"
    assert format_timestamp(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00.000000Z"
    early = format_timestamp(datetime(999, 3, 4, 5, 6, 7, 8, tzinfo=UTC))
    assert early == "0999-03-04T05:06:07.000008Z"  # strftime's %Y gave "999": one shorter
    assert parse_timestamp(format_timestamp(moment)) == moment
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2026, 1, 2))


async def test_a_load_reads_its_own_stores_events_without_validating_them_again(
        store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    await store.append("c-1", "counter", 0, [CounterIncremented(amount_minor=2),
                                             CounterIncremented(amount_minor=3)], META)

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("validated again")

    monkeypatch.setattr(EventRegistry, "decode", refuse)
    monkeypatch.setattr(CounterIncremented, "model_validate", refuse)
    async with store.db.read() as conn:
        total, version = await load(conn, store, registry, "c-1", 0,
                                    lambda total, event: total + event.amount_minor)
    assert (total, version) == (5, 2)


@pytest.fixture
async def harness(db: Database, broker_bootstrap: str) -> AsyncIterator[Harness]:
    async for h in _harness(db, broker_bootstrap):
        yield h


async def _records(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                              auto_offset_reset="earliest")
    await reader.start()
    try:
        reader.assign([TopicPartition(topic, p) for p in await end_offsets(bootstrap, topic)])
        found: list[ConsumerRecord] = []
        while batch := await reader.getmany(timeout_ms=1000):
            found += [record for records in batch.values() for record in records]
        return found
    finally:
        await reader.stop()


async def test_a_consumer_passes_a_type_it_does_not_handle_by_the_relays_headers_alone(
        harness: Harness) -> None:
    await append_many(harness.store, streams=2, per_stream=3)
    relay = harness.relay()
    try:
        assert await relay.publish_batch() == 6
    finally:
        await relay.stop()
    records = await _records(harness.bootstrap, harness.topic)
    assert len(records) == 6
    for record in records:
        unparsable = dataclasses.replace(record, value=b"{not json")
        passed = inbox.peek(unparsable, wanted=set())
        whole = inbox.peek(record, wanted={CounterIncremented.TYPE}).envelope
        assert whole is not None and passed.envelope is None
        assert (passed.stream_id, passed.version, passed.event_type) == (
            whole.stream_id, whole.stream_version, whole.event_type)
