"""A database outage answers 503 with Retry-After, never 500; /ready turns false; service recovers.

The outage is real: a private PostgreSQL server (``tests.pgserver``) is stopped the way a
crash stops it while the credit service runs on it, and started again.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from libs.runtime.outages import RETRY_AFTER_SECONDS, is_outage
from libs.store.database import Database
from o2c.pgserver import PrivatePostgres
from services.credit.app import SPEC as CREDIT
from tests.conftest import wait_until
from tests.credit.support import Feed, fix_clock
from tests.pgserver import private_postgres
from tests.service_support import RunningService, running


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, f"{response.request.url}: {response.status_code} {response.text}"
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/service-unavailable")


@pytest.fixture
async def server() -> AsyncIterator[PrivatePostgres]:
    with private_postgres() as started:
        yield started


@pytest.fixture
async def credit(server: PrivatePostgres) -> AsyncIterator[RunningService]:
    db = Database(server.url, schema="o2c_credit")
    try:
        async with running(CREDIT, db) as service:
            fix_clock(service)
            yield service
    finally:
        await db.dispose()


@pytest.fixture
async def finance(credit: RunningService) -> dict[str, str]:
    """Partner p1 registered on credit; a finance key's headers."""
    feed = Feed(credit)
    await feed.register("p1")
    return await feed.key("finance")


def payment(bank_ref: str) -> dict[str, Any]:
    return {"partner_id": "p1", "amount_minor": 100, "bank_ref": bank_ref, "received_on": "2026-03-01"}


async def database_ready(svc: RunningService) -> bool:
    answer = await svc.ops.get("/ready")
    return bool(answer.json()["checks"]["database"])


async def test_a_database_outage_answers_503_and_the_service_recovers(
        server: PrivatePostgres, credit: RunningService, finance: dict[str, str]) -> None:
    client = credit.client
    assert (await client.post("/v1/payments", json=payment("B0"), headers=finance)).status_code == 201
    assert await database_ready(credit)

    await asyncio.to_thread(server.kill)
    retried = finance | {"Idempotency-Key": "pay-during-outage"}
    for _ in range(2):  # the first use of a dropped connection, then a refused new one
        assert_unavailable(await client.get("/v1/accounts/p1", headers=finance))
        assert_unavailable(await client.get("/v1/payments", headers=finance))
        assert_unavailable(await client.post("/v1/payments", json=payment("B1"), headers=retried))
    ready = await credit.ops.get("/ready")
    assert ready.status_code == 503 and ready.json()["checks"]["database"] is False

    await asyncio.to_thread(server.start)
    await wait_until(lambda: database_ready(credit), 30, "/ready to see the database again")
    replayed = await client.post("/v1/payments", json=payment("B1"), headers=retried)
    assert replayed.status_code == 201, replayed.text
    again = await client.post("/v1/payments", json=payment("B1"), headers=retried)
    assert (again.status_code, again.json()) == (201, replayed.json())
    refs = sorted(p["bank_ref"] for p in (await client.get("/v1/payments", headers=finance)).json()["items"])
    assert refs == ["B0", "B1"]


async def test_requests_cut_mid_flight_answer_503_never_500_and_retries_double_nothing(
        server: PrivatePostgres, credit: RunningService, finance: dict[str, str]) -> None:
    client = credit.client

    async def pay(n: int) -> httpx.Response:
        headers = finance | {"Idempotency-Key": f"k{n}"}
        return await client.post("/v1/payments", json=payment(f"B{n}"), headers=headers)

    in_flight = [asyncio.create_task(pay(n)) for n in range(30)]
    await asyncio.to_thread(server.kill)
    answers = await asyncio.gather(*in_flight)
    assert {a.status_code for a in answers} <= {201, 503}, [a.text for a in answers if a.status_code >= 500
                                                             and a.status_code != 503]
    for answer in answers:
        if answer.status_code == 503:
            assert_unavailable(answer)

    await asyncio.to_thread(server.start)
    await wait_until(lambda: database_ready(credit), 30, "/ready to see the database again")
    retried = await asyncio.gather(*(pay(n) for n in range(30)))
    assert [a.status_code for a in retried] == [201] * 30
    for first, again in zip(answers, retried, strict=True):
        if first.status_code == 201:
            assert again.json() == first.json()
    listed = (await client.get("/v1/payments", headers=finance, params={"limit": 200})).json()["items"]
    assert sorted(p["bank_ref"] for p in listed) == sorted(f"B{n}" for n in range(30))


def test_sqlite_locked_past_its_busy_timeout_is_an_outage(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    waiter = sqlite3.connect(path, isolation_level=None, timeout=0.05)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as locked:
            waiter.execute("BEGIN IMMEDIATE")
    finally:
        holder.close()
        waiter.close()
    assert is_outage(locked.value)
    assert is_outage(OperationalError("BEGIN IMMEDIATE", {}, locked.value))


@pytest.mark.parametrize("outage", [
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
    ConnectionRefusedError(111, "Connect call failed"),
    OSError("Multiple exceptions: [Errno 111] Connect call failed, [Errno 99] ..."),
    PoolTimeout("QueuePool limit of size 10 overflow 10 reached"),
])
def test_what_a_restart_or_an_exhausted_pool_raises_is_an_outage(outage: Exception) -> None:
    assert is_outage(outage)
    wrapped = OperationalError("SELECT 1", {}, RuntimeError("adapter"))
    wrapped.__cause__ = outage
    assert is_outage(wrapped)


@pytest.mark.parametrize("bug", [
    asyncpg.UniqueViolationError("duplicate key value violates unique constraint"),
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    sqlite3.OperationalError("no such table: events"),
    OperationalError("SELECT", {}, sqlite3.OperationalError("near \"SELEC\": syntax error")),
    ValueError("a plain bug"),
])
def test_a_bug_is_not_an_outage(bug: Exception) -> None:
    assert not is_outage(bug)
