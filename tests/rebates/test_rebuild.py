"""``o2c replay --service rebates``: programs, accruals and settlements rebuilt equal the live ones."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from libs.events import default_registry
from libs.store.database import Database
from services.rebates.app import SPEC
from services.rebates.application import views
from services.rebates.application.rebuild import rebuild_read_models
from tests.read_model_support import documents_of
from tests.rebates.support import Feed, issue_key
from tests.rebates.test_reactions import close, publish
from tests.service_support import RunningService, running

KINDS = (views.PROGRAM, views.ACCRUAL, views.SETTLEMENT)


@pytest.fixture
async def rebates(db: Database) -> AsyncIterator[RunningService]:
    async with running(SPEC, db) as service:
        yield service


async def test_rebuilding_from_the_store_gives_the_documents_the_commands_wrote(
    rebates: RunningService,
) -> None:
    svc = rebates
    closer = await issue_key(svc, "finance", key_id="fin-1")
    approver = await issue_key(svc, "finance", key_id="fin-2")
    feed = Feed(svc)
    await feed.partner("p1")
    await feed.partner("p2")
    program = await publish(svc, closer)
    await feed.invoice("inv-1", "p1", [("tools", 2_000_000)])
    await feed.invoice("inv-2", "p2", [("tools", 1_000_000)])
    first, _ = sorted(await close(svc, closer, program), key=lambda s: s["partner_id"])
    approved = await svc.client.post(f"/v1/settlements/{first['id']}/approve", headers=approver)
    assert approved.status_code == 200, approved.text
    await feed.credit_note("cn-2", "p1", [("tools", 800_000)], issued_on="2026-03-30")  # late return
    await close(svc, closer, program)  # p1 owes some back: a debit, superseded by the next close
    await feed.invoice("inv-late", "p1", [("tools", 5_000_000)], issued_on="2026-03-31")
    true_up = next(s for s in await close(svc, approver, program) if s["partner_id"] == "p1")
    assert (await svc.client.post(f"/v1/settlements/{true_up['id']}/approve",
                                  headers=closer)).status_code == 200
    await feed.credit_note("cn-rebate", "p1", [], source_kind="rebate", source_ref=true_up["id"],
                           amount_minor=true_up["payout_minor"], issued_on="2026-04-02")
    live = await documents_of(svc.ctx.db, KINDS)
    assert {row[0] for row in live} == set(KINDS)
    statuses = {row[3] for row in live if row[0] == views.SETTLEMENT}
    assert {"approved", "superseded"} <= statuses
    assert any(row[5].get("credit_note_id") == "cn-rebate" for row in live)

    await rebuild_read_models(svc.ctx.db, default_registry())

    assert await documents_of(svc.ctx.db, KINDS) == live


async def test_rebuilding_keeps_interim_rounds_bonuses_caps_and_approved_debits(
    rebates: RunningService,
) -> None:
    svc = rebates
    closer = await issue_key(svc, "finance", key_id="fin-1")
    approver = await issue_key(svc, "finance", key_id="fin-2")
    feed = Feed(svc)
    await feed.partner("p1")
    program = await publish(svc, closer, cap_minor=30_000,
                            timeliness={"min_on_time_bp": 5_000, "rate_bp": 100})
    await feed.invoice("inv-1", "p1", [("tools", 1_500_000)], issued_on="2026-01-10")
    await feed.paid("inv-1", "p1", on_time=True)
    await feed.invoice("inv-2", "p1", [("tools", 500_000)], issued_on="2026-03-10")
    interim = await svc.client.post(f"/v1/programs/{program}/settle", json={"through": "2026-02-28"},
                                    headers=closer)
    assert interim.status_code == 200, interim.text
    [round_1] = interim.json()["settlements"]
    assert (round_1["final_minor"], round_1["components"]) == (30_000, [
        {"kind": "volume", "amount_minor": 30_000}, {"kind": "timeliness_bonus", "amount_minor": 15_000},
        {"kind": "cap", "amount_minor": -15_000}])
    assert (await svc.client.post(f"/v1/settlements/{round_1['id']}/approve",
                                  headers=approver)).status_code == 200
    [final] = await close(svc, closer, program)
    assert final["payout_minor"] == 0 and final["status"] == "nothing_due"
    await feed.credit_note("cn-1", "p1", [("tools", 1_400_000)], issued_on="2026-04-20",
                           order_id="ord-inv-1")  # a return of January's goods: a true-up at once
    debit = (await svc.client.get("/v1/settlements", params={"status": "debit"}, headers=closer)).json()
    [owed] = debit["items"]
    assert (owed["final_minor"], owed["payout_minor"]) == (12_000, -18_000)
    assert (await svc.client.post(f"/v1/settlements/{owed['id']}/approve",
                                  headers=approver)).status_code == 200
    live = await documents_of(svc.ctx.db, KINDS)

    await rebuild_read_models(svc.ctx.db, default_registry())

    assert await documents_of(svc.ctx.db, KINDS) == live
