"""A partner's stream loads from a snapshot; deleting snapshots changes no decision (both databases)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from libs.runtime.aggregate import load
from libs.store.schema import snapshots as snapshots_table
from services.partners.application.partners import SNAPSHOTS, stream_of
from services.partners.domain.partner import Partner, evolve
from services.partners.domain.snapshot import decode, encode
from tests.partners.support import register, sign
from tests.service_support import ADMIN, RunningService


async def _states(svc: RunningService, partner_id: str) -> tuple[Any, Any]:
    async with svc.ctx.db.read() as conn:
        snapshotted = await load(conn, svc.ctx.store, svc.ctx.registry, stream_of(partner_id), Partner(),
                                 evolve, snapshots=SNAPSHOTS)
        folded = await load(conn, svc.ctx.store, svc.ctx.registry, stream_of(partner_id), Partner(), evolve)
    return snapshotted, folded


async def test_a_partner_decided_after_its_snapshots_are_deleted_decides_the_same(
    svc: RunningService, monkeypatch: Any,
) -> None:
    monkeypatch.setattr(SNAPSHOTS, "every", 1)
    pid = (await register(svc))["id"]
    await sign(svc, pid, "trial")
    url = f"/v1/partners/{pid}"
    suspended = await svc.client.post(f"{url}/suspend", json={"reason": "late"}, headers=ADMIN)
    assert suspended.status_code == 200
    async with svc.ctx.db.read() as conn:
        assert (await conn.execute(select(snapshots_table.c.version).where(
            snapshots_table.c.stream_id == stream_of(pid)))).scalar() == 3
    snapshotted, folded = await _states(svc, pid)
    assert snapshotted == folded and decode(encode(folded[0])) == folded[0]

    async with svc.ctx.db.transaction() as conn:
        await conn.execute(delete(snapshots_table))
    SNAPSHOTS.forget()
    reinstated = await svc.client.post(f"{url}/reinstate", headers=ADMIN)  # back to the status before
    assert reinstated.status_code == 200 and reinstated.json()["status"] == "trial"
    promoted = await sign(svc, pid, "annual")
    assert [a["state"] for a in promoted["agreements"]] == ["superseded", "in_force"]
    snapshotted, folded = await _states(svc, pid)
    assert snapshotted == folded and folded[1] == 5
