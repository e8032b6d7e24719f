"""A dead-letter queue that cannot amplify (issue 6, finding 3).

Real broker, SQLite and PostgreSQL: several consumer groups read one topic; a
malformed message and a poison event yield one dead letter per failing group;
redrives go back to that group only and never write to a topic; operators
reach a service's dead letters over HTTP and through ``o2c dlq``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import sqlalchemy
import uvicorn
from sqlalchemy.ext.asyncio import AsyncConnection
from typer.testing import CliRunner

from libs.events.partners import KeyIssued
from libs.messaging import dlq, held
from libs.messaging.broker import free_port
from libs.messaging.consumer import Consumer, Delivery
from libs.messaging.kafka import KafkaConnection
from libs.runtime.auth import KeyRing, hash_secret, store_key
from libs.runtime.dead_letters import dead_letter_router
from libs.runtime.http import create_app
from libs.store.database import Database
from o2c.cli import app as cli
from tests.conftest import wait_until
from tests.libs.consumer_support import (
    dead_letters_of,
    harness_on,
    held_of,
    produce,
    produce_raw,
    stream_of,
)
from tests.libs.sample_events import CounterIncremented
from tests.libs.test_relay_consumer import (
    Harness,
    assert_exactly_once_in_stream_order,
    count_messages,
)


@pytest.fixture
async def harness(db: Database, broker_bootstrap: str) -> AsyncIterator[Harness]:
    async with harness_on(db, broker_bootstrap, 3) as harness:
        yield harness


MALFORMED = b'{"event_id": "not an event"'
ADMIN_SECRET = "dead-letter-admin"
AUDITOR_SECRET = "dead-letter-auditor"


def failing_while(consumer: Consumer, fails: dict[str, bool]) -> Consumer:
    """``consumer`` fails on poison events while ``fails[consumer.name]`` holds."""
    apply = consumer.handlers[CounterIncremented.TYPE]

    async def handler(delivery: Delivery) -> None:
        event = delivery.event
        assert isinstance(event, CounterIncremented)
        if event.poison and fails[consumer.name]:
            raise ValueError("poison")
        await apply(delivery)

    consumer.handlers[CounterIncremented.TYPE] = handler
    return consumer


async def test_one_poison_message_gives_one_dead_letter_per_failing_group_and_redrives_stay_put(
    harness: Harness,
) -> None:
    harness.poison_fails = False  # each group decides below
    poison, after = await stream_of(harness.db, "acct-p", 2, poison_at=1)
    healthy = await stream_of(harness.db, "acct-q", 3)
    await produce_raw(harness.bootstrap, harness.topic, MALFORMED, key=b"acct-x")
    await produce(harness.bootstrap, harness.topic, [poison, after, *healthy])
    fails: dict[str, bool] = {}
    groups = [harness.consumer(name) for name in ("a", "b", "c")]
    fails.update({groups[0].name: True, groups[1].name: True, groups[2].name: False})
    for group in groups:
        harness.start(failing_while(group, fails).run)
    a, b, c = groups
    for group in (a, b):
        await wait_until(lambda g=group: _held(harness, g, {("acct-p", 2)}), what="follower held")
        await wait_until(lambda g=group: _applied(harness, g, 3), what="healthy stream applied")
    await wait_until(lambda: _applied(harness, c, 5), what="group c applied everything")

    malformed = dlq.undecodable_id(harness.topic, b"acct-x", MALFORMED)
    expected_letters = {
        a.name: {malformed: "dead", poison.event_id: "dead"},
        b.name: {malformed: "dead", poison.event_id: "dead"},
        c.name: {malformed: "dead"},
    }
    assert {g.name: await dead_letters_of(harness.db, g.name) for g in groups} == expected_letters
    dead_letter_topic = f"{harness.topic}.dlq"
    assert await count_messages(harness.bootstrap, dead_letter_topic) == 5
    on_topic = await count_messages(harness.bootstrap, harness.topic)

    for _ in range(2):  # still failing: two redrives change nothing more
        for group in groups:
            report = await group.redrive()
            assert report.redriven == 0
            assert report.still_dead == (1 if group is not c else 0)
            assert report.undecodable == 1
    assert {g.name: await dead_letters_of(harness.db, g.name) for g in groups} == expected_letters
    assert await count_messages(harness.bootstrap, dead_letter_topic) == 5
    assert await count_messages(harness.bootstrap, harness.topic) == on_topic

    fails[a.name] = False  # fixed in group a only
    assert (await a.redrive()).redriven == 1
    stream_p = {poison.event_id, after.event_id}
    assert_exactly_once_in_stream_order(
        [x for x in await harness.applied(a) if x[1] == "acct-p"], stream_p)
    assert (await dead_letters_of(harness.db, a.name))[poison.event_id] == "redriven"
    assert await held_of(harness.db, a.name) == {}
    assert (await a.redrive()).redriven == 0
    assert (await dead_letters_of(harness.db, b.name))[poison.event_id] == "dead"
    assert not [x for x in await harness.applied(b) if x[1] == "acct-p"]
    assert_exactly_once_in_stream_order(await harness.applied(c),
                                        stream_p | {e.event_id for e in healthy})
    assert len(await harness.applied(a)) == 5
    assert await count_messages(harness.bootstrap, harness.topic) == on_topic


async def _applied(harness: Harness, consumer: Consumer, n: int) -> bool:
    return len(await harness.applied(consumer)) >= n


async def _held(harness: Harness, consumer: Consumer, keys: set[tuple[str, int]]) -> bool:
    return set(await held_of(harness.db, consumer.name)) == keys


# -- over HTTP, and through ``o2c dlq`` ------------------------------------------------


async def test_a_redrive_while_the_broker_is_away_answers_503_not_500(harness: Harness) -> None:
    """Healing parked gaps reads the topics: with the broker away, the redrive is
    to be retried (503 with Retry-After), not a bug (500)."""
    _, _, v3 = await stream_of(harness.db, "acct-b", 3)
    consumer = harness.consumer()
    await consumer.handle(v3)  # held: v1 and v2 never came
    async with harness.db.transaction() as conn:
        await held.park(conn, consumer.name, "acct-b")
    consumer.kafka = KafkaConnection(f"127.0.0.1:{free_port()}")  # nothing listens there
    async with dead_letter_api(consumer) as api:
        answer = await api.post("/internal/dead-letters/redrive", json={},
                                headers=as_(ADMIN_SECRET))
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert int(answer.headers["Retry-After"]) > 0
    [(key, parked_at)] = (await held_of(harness.db, consumer.name)).items()
    assert key == ("acct-b", 3) and parked_at is not None  # still held, still parked


@asynccontextmanager
async def dead_letter_api(consumer: Consumer) -> AsyncIterator[httpx.AsyncClient]:
    """The shared dead-letter router over ``consumer``, with an admin and an auditor key."""
    app = create_app(title="dead letters", routers=[dead_letter_router()])
    app.state.consumer = consumer
    async with consumer.db.transaction() as conn:
        await store_key(conn, KeyIssued(key_id="aud", role="auditor",
                                        secret_sha256=hash_secret(AUDITOR_SECRET)), "2026-01-01")
    app.state.keyring = KeyRing(consumer.db, ADMIN_SECRET)
    await app.state.keyring.refresh()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        await consumer.close()


def as_(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_operators_list_show_redrive_and_discard_over_http(harness: Harness) -> None:
    poison, after = await stream_of(harness.db, "acct-h", 2, poison_at=1)
    consumer = harness.consumer()
    await consumer.handle(poison)
    await consumer.handle(after)
    assert await held_of(harness.db, consumer.name) == {("acct-h", 2): None}
    async with dead_letter_api(consumer) as api:
        listed = await api.get("/internal/dead-letters", headers=as_(AUDITOR_SECRET))
        assert listed.status_code == 200
        [letter] = listed.json()["dead_letters"]
        assert (letter["event_id"], letter["status"]) == (str(poison.event_id), "dead")
        [waiting] = listed.json()["waiting_streams"]
        assert waiting["stream_id"] == "acct-h" and waiting["blocked_by_dead_letter"]

        shown = await api.get(f"/internal/dead-letters/{poison.event_id}",
                              headers=as_(AUDITOR_SECRET))
        assert shown.status_code == 200 and json.loads(shown.json()["message"])["event_id"]
        for path, status in ((f"/internal/dead-letters/{uuid.uuid4()}", 404),
                             ("/internal/dead-letters/not-an-id", 422)):
            missing = await api.get(path, headers=as_(ADMIN_SECRET))
            assert missing.status_code == status
            assert missing.headers["content-type"] == "application/problem+json"
        refused = await api.post("/internal/dead-letters/redrive", json={},
                                 headers=as_(AUDITOR_SECRET))
        assert refused.status_code == 403
        blank = await api.post(f"/internal/dead-letters/{poison.event_id}/discard",
                               json={"reason": "  "}, headers=as_(ADMIN_SECRET))
        assert blank.status_code == 422

        redriven = await api.post("/internal/dead-letters/redrive", json={},
                                  headers=as_(ADMIN_SECRET))
        assert redriven.json()["still_dead"] == 1  # still poison

        discarded = await api.post(f"/internal/dead-letters/{poison.event_id}/discard",
                                   json={"reason": "order cancelled by phone"},
                                   headers=as_(ADMIN_SECRET))
        assert discarded.status_code == 200
        again = await api.post(f"/internal/dead-letters/{poison.event_id}/discard",
                               json={"reason": "twice"}, headers=as_(ADMIN_SECRET))
        assert again.status_code == 404
        record = (await api.get(f"/internal/dead-letters/{poison.event_id}",
                                headers=as_(ADMIN_SECRET))).json()
    assert (record["status"], record["resolved_by"], record["resolution"]) == (
        "discarded", "admin:bootstrap-admin", "order cancelled by phone")
    # the stream goes on after the discarded event: its follower was released
    assert [x[2] for x in await harness.applied(consumer)] == [2]
    assert await held_of(harness.db, consumer.name) == {}


async def test_o2c_dlq_finds_the_service_says_when_nothing_is_to_do_and_fails_unreachable(
    harness: Harness,
) -> None:
    poison, _ = await stream_of(harness.db, "acct-c", 2, poison_at=1)
    consumer = harness.consumer()
    app = create_app(title="dead letters", routers=[dead_letter_router()])
    app.state.consumer = consumer
    app.state.keyring = KeyRing(consumer.db, ADMIN_SECRET)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    await wait_until(lambda: _started(server), what="the test service")
    runner = CliRunner()
    here = {"O2C_ADMIN_TOKEN": ADMIN_SECRET,
            "O2C_SERVICE_URLS": json.dumps({"partners": f"http://127.0.0.1:{port}"})}

    def dlq(*args: str, env: dict[str, str] = here):  # type: ignore[no-untyped-def]
        return asyncio.to_thread(runner.invoke, cli, ["dlq", *args, "--consumer", "partners"],
                                 env=env)

    try:
        quiet = await dlq("redrive")
        assert quiet.exit_code == 0 and "nothing to redrive" in quiet.output
        assert "no dead letters" in (await dlq("list")).output

        await consumer.handle(poison)
        listed = await dlq("list")
        assert listed.exit_code == 0 and str(poison.event_id) in listed.output
        redriven = await dlq("redrive", "--id", str(poison.event_id))
        assert redriven.exit_code == 0 and '"still_dead": 1' in redriven.output
        discarded = await dlq("discard", "--id", str(poison.event_id), "--reason", "test data")
        assert discarded.exit_code == 0
        assert "nothing to discard" in (await dlq("discard", "--id", str(poison.event_id),
                                                  "--reason", "again")).output

        nowhere = {**here, "O2C_SERVICE_URLS": json.dumps(
            {"partners": f"http://127.0.0.1:{free_port()}"})}
        unreachable = await dlq("redrive", env=nowhere)
        assert unreachable.exit_code == 1 and "cannot be reached" in unreachable.output
    finally:
        server.should_exit = True
        await serving
        await consumer.close()


async def _started(server: uvicorn.Server) -> bool:
    return bool(server.started)


async def test_a_discard_racing_a_redrive_that_applied_the_event_is_refused(
    harness: Harness,
) -> None:
    """The redrive applied the dead letter and commits while a discard of it waits on
    the row: the discard must then find it resolved (404), never record "discarded"
    over an event that was applied."""
    poison, _ = await stream_of(harness.db, "acct-r", 2, poison_at=1)
    consumer = harness.consumer()
    await consumer.handle(poison)
    assert (await dead_letters_of(harness.db, consumer.name))[poison.event_id] == "dead"
    redriving = harness.db.transaction()
    conn = await redriving.__aenter__()
    assert await dlq.is_unresolved(conn, consumer.name, poison.event_id)
    await dlq.mark_redriven(conn, consumer.name, poison.event_id)  # not committed yet
    redriver = await _backend_pid(conn)
    discarding = asyncio.create_task(
        consumer.discard(poison.event_id, reason="too late", actor="admin:test"))
    await wait_until(lambda: _blocked_by(harness.db, redriver, discarding),
                     what="the discard waiting for the redrive")
    await redriving.__aexit__(None, None, None)
    assert await discarding is False
    assert (await dead_letters_of(harness.db, consumer.name))[poison.event_id] == "redriven"


async def _backend_pid(conn: AsyncConnection) -> int | None:
    if conn.dialect.name != "postgresql":
        return None
    return int((await conn.execute(sqlalchemy.text("select pg_backend_pid()"))).scalar_one())


async def _blocked_by(db: Database, redriver: int | None, task: asyncio.Task[bool]) -> bool:
    """The discard waits for the redrive's transaction: on PostgreSQL, some session is
    blocked by the redriving one; SQLite lets one writer in at a time anyway."""
    assert not task.done(), "the discard did not wait for the redrive's transaction"
    if redriver is None:
        await asyncio.sleep(0)
        return True
    async with db.read() as conn:
        blocked = (await conn.execute(sqlalchemy.text(
            "select count(*) from pg_stat_activity where :pid = any(pg_blocking_pids(pid))"),
            {"pid": redriver})).scalar_one()
    return bool(blocked)
