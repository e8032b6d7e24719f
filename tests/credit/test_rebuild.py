"""``o2c replay --service credit``: the documents rebuilt from the store equal the live ones."""

from __future__ import annotations

from libs.events import default_registry
from services.credit.application import read_models as rm
from services.credit.application.rebuild import rebuild_read_models
from tests.credit.support import Feed, ok, pay
from tests.read_model_support import documents_of
from tests.service_support import RunningService

KINDS = (rm.INVOICE, rm.PAYMENT, rm.CREDIT_NOTE, rm.DEBIT_NOTE, rm.WRITE_OFF, rm.REVIEW)


async def test_rebuilding_from_the_store_gives_the_documents_the_commands_wrote(
    svc: RunningService, feed: Feed
) -> None:
    await feed.register("p1", limit=10_000)
    await feed.register("p2", limit=100_000)
    finance = await feed.key("finance")
    await feed.order("o1", "p1", 10_000)
    await feed.ship_all("o1")
    await feed.order("o2", "p1", 3_000)  # held: the limit is used up
    await feed.order("o3", "p1", 4_000)
    await feed.cancel("o3", "p1")
    ok(await pay(svc, finance, "p1", 6_000), 201)  # releases o2
    await feed.order("o4", "p2", 2_000)
    await feed.ship_all("o4")
    await feed.settlement_approved("p2", 300, "stl_b")
    await feed.settlement_approved("p2", -500, "stl_c")  # a debit note, paid by the next receipt
    ok(await pay(svc, finance, "p2", 2_000), 201)
    [invoice] = ok(await svc.client.get("/v1/invoices", headers=finance,
                                        params={"partner_id": "p1"}))["items"]
    ok(await svc.client.post(f"/v1/invoices/{invoice['id']}/write-off", headers=finance,
                             json={"amount_minor": 40, "reason": "residue"}))
    await feed.order("o5", "p2", 1_000)
    await feed.ship_all("o5")
    [open_invoice] = ok(await svc.client.get("/v1/invoices", headers=finance,
                                             params={"partner_id": "p2", "status": "open"}))["items"]
    ok(await svc.client.post(f"/v1/invoices/{open_invoice['id']}/write-off", headers=finance,
                             json={"amount_minor": 900, "reason": "proposed only"}))
    live = await documents_of(svc.ctx.db, KINDS)
    assert {row[0] for row in live} == set(KINDS)
    statuses = {row[1]: row[3] for row in live if row[0] == rm.REVIEW}
    assert statuses["o3"] == "cancelled"

    folded = await rebuild_read_models(svc.ctx.db, default_registry())

    assert folded == len(await svc.ctx.store.load("account-p1")) + len(await svc.ctx.store.load("account-p2"))
    assert await documents_of(svc.ctx.db, KINDS) == live
