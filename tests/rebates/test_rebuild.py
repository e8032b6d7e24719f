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
