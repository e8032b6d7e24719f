"""Concurrent commands on PostgreSQL: optimistic concurrency retries, unique legal ids hold."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from libs.store.database import Database
from services.partners.app import SPEC
from tests.service_support import ADMIN, RunningService, running

from .support import partner_body, register, sign


@pytest.fixture
async def pg_svc(pg_db: Database) -> AsyncIterator[RunningService]:
    async with running(SPEC, pg_db) as service:
        yield service


async def test_one_of_concurrent_registrations_of_a_legal_id_wins(pg_svc: RunningService) -> None:
    responses = await asyncio.gather(*(
        pg_svc.client.post("/v1/partners", json=partner_body(name=f"P{i}"), headers=ADMIN)
        for i in range(6)))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 5
    listed = (await pg_svc.client.get("/v1/partners", headers=ADMIN)).json()["items"]
    assert len(listed) == 1


async def test_concurrent_lifecycle_commands_serialise(pg_svc: RunningService) -> None:
    pid = (await register(pg_svc))["id"]
    await sign(pg_svc, pid)
    responses = await asyncio.gather(*(
        pg_svc.client.post(f"/v1/partners/{pid}/suspend", json={"reason": f"r{i}"}, headers=ADMIN)
        for i in range(4)))
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]
    changes = await asyncio.gather(*(
        pg_svc.client.patch(f"/v1/partners/{pid}", json={"tier": tier}, headers=ADMIN)
        for tier in ("B", "C", "D")))
    assert all(r.status_code == 200 for r in changes)
    events = await pg_svc.ctx.store.load(f"partner-{pid}")
    assert [e.stream_version for e in events] == list(range(1, len(events) + 1))
    assert [e.event_type for e in events].count("PartnerTierChanged") == 3
    final = (await pg_svc.client.get(f"/v1/partners/{pid}", headers=ADMIN)).json()
    assert final["tier"] == events[-1].payload()["to_tier"]
