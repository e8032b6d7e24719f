"""A rebate's stream loads from a snapshot; deleting snapshots changes no answer (both databases)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import delete, select

from libs.runtime.aggregate import load
from libs.store.database import Database
from libs.store.schema import snapshots as snapshots_table
from services.rebates.app import SPEC
from services.rebates.application.rebates import SNAPSHOTS, stream_of
from services.rebates.domain.rebate import RebateState, evolve
from services.rebates.domain.snapshot import decode, encode
from tests.rebates.support import Feed, issue_key
from tests.rebates.test_reactions import close, publish
from tests.service_support import RunningService, running


@pytest.fixture
async def rebates(db: Database) -> AsyncIterator[RunningService]:
    async with running(SPEC, db) as service:
        yield service


async def _states(svc: RunningService, program_id: str, partner_id: str) -> tuple[Any, Any]:
    stream, initial = stream_of((program_id, partner_id)), RebateState(program_id, partner_id)
    async with svc.ctx.db.read() as conn:
        snapshotted = await load(conn, svc.ctx.store, svc.ctx.registry, stream, initial, evolve,
                                 snapshots=SNAPSHOTS)
        folded = await load(conn, svc.ctx.store, svc.ctx.registry, stream, initial, evolve)
    return snapshotted, folded


async def _answers(svc: RunningService, headers: dict[str, str]) -> tuple[Any, Any]:
    accruals = await svc.client.get("/v1/accruals", headers=headers)
    settlements = await svc.client.get("/v1/settlements", headers=headers)
    assert accruals.status_code == settlements.status_code == 200
    return accruals.json(), settlements.json()


async def test_a_rebate_loaded_from_its_snapshot_equals_its_fold_and_deleting_it_changes_no_answer(
    rebates: RunningService, monkeypatch: Any,
) -> None:
    svc = rebates
    monkeypatch.setattr(SNAPSHOTS, "every", 2)
    closer = await issue_key(svc, "finance", key_id="fin-1")
    approver = await issue_key(svc, "finance", key_id="fin-2")
    feed = Feed(svc)
    await feed.partner("p1")
    program = await publish(svc, closer)
    for n in range(5):
        await feed.invoice(f"inv-{n}", "p1", [("tools", 400_000 + n)])
    [settlement] = await close(svc, closer, program)
    approved = await svc.client.post(f"/v1/settlements/{settlement['id']}/approve", headers=approver)
    assert approved.status_code == 200, approved.text

    async with svc.ctx.db.read() as conn:
        taken = (await conn.execute(select(snapshots_table.c.version).where(
            snapshots_table.c.stream_id == stream_of((program, "p1"))))).scalar()
    assert taken is not None and taken >= 5  # five accruals, a proposal and an approval
    snapshotted, folded = await _states(svc, program, "p1")
    assert snapshotted == folded and decode(encode(folded[0])) == folded[0]
    assert folded[0].accruals == 5 and folded[0].settlements[0].status == "approved"

    before = await _answers(svc, approver)
    async with svc.ctx.db.transaction() as conn:
        await conn.execute(delete(snapshots_table))
    SNAPSHOTS.forget()
    assert await _answers(svc, approver) == before

    await feed.invoice("inv-late", "p1", [("tools", 100_000)])  # decided on the refolded state
    snapshotted, folded = await _states(svc, program, "p1")
    assert snapshotted == folded and folded[0].accruals == 6
