"""Credit's reactions to a partner's suspension and reinstatement, on both databases."""

from __future__ import annotations

from libs.events.partners import PartnerReinstated, PartnerSuspended
from libs.messaging.consumer import Outcome
from libs.messaging.inbox import Delivery
from libs.runtime.commands import react
from services.credit.application.handlers import REACTIONS
from tests.credit.support import Feed, account, account_events, ok, pay, types
from tests.service_support import RunningService


async def test_a_suspension_holds_the_queue_and_new_orders_until_reinstatement(
        svc: RunningService, feed: Feed) -> None:
    await feed.register("p1", limit=10_000)
    finance = await feed.key("finance")
    await feed.order("o1", "p1", 6_000)
    await feed.order("o2", "p1", 5_000)  # over the limit: held
    suspended = feed.envelope("partner-p1", PartnerSuspended(partner_id="p1", reason="audit"), "partner")
    assert await svc.consumer.handle(suspended) is Outcome.APPLIED
    await feed.order("o3", "p1", 1_000)  # fits, but the partner is suspended
    events = await account_events(svc, "p1")
    assert [(t, p.get("order_id"), p.get("reason")) for t, p in events[2:]] == [
        ("OrderPutOnHold", "o2", "over_limit"),
        ("AccountSuspended", None, "audit"),
        ("OrderPutOnHold", "o2", "partner_suspended"),
        ("OrderPutOnHold", "o3", "partner_suspended"),
    ]
    figures = await account(svc, finance, "p1")
    assert figures["suspended"] and figures["exposure_minor"] == 6_000
    assert [(o["order_id"], o["hold_reason"]) for o in figures["queued_orders"]] == [
        ("o2", "partner_suspended"), ("o3", "partner_suspended")]

    # a payment releases nothing; finance cannot release, the state is untouched
    await feed.ship_all("o1")
    ok(await pay(svc, finance, "p1", 6_000), 201)
    refused = await svc.client.post("/v1/holds/o3/release", json={"reason": "sales asked"}, headers=finance)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/partner-suspended")
    assert [p["order_id"] for t, p in await account_events(svc, "p1") if t == "FundsReviewPassed"] == ["o1"]

    # redelivered past the inbox: nothing new
    before = await types(svc, "p1")
    assert await svc.consumer.handle(suspended) is Outcome.DUPLICATE
    async with svc.ctx.db.transaction() as conn:
        await react(svc.ctx, REACTIONS["PartnerSuspended"], Delivery(
            conn, suspended, svc.ctx.registry.decode(suspended), svc.consumer.name))
    assert await types(svc, "p1") == before

    # reinstated: the queue in arrival order, o2 (5_000) then o3 (1_000) both fit now
    await feed.emit("partner-p1", PartnerReinstated(partner_id="p1", status_after="active"), "partner")
    events = await account_events(svc, "p1")
    tail = [(t, p.get("order_id"), p.get("reason") or p.get("how")) for t, p in events[len(before):]]
    assert tail == [
        ("AccountReinstated", None, None),
        ("HoldReleased", "o2", "partner reinstated"), ("FundsReviewPassed", "o2", "within_limit"),
        ("HoldReleased", "o3", "partner reinstated"), ("FundsReviewPassed", "o3", "within_limit"),
    ]
    figures = await account(svc, finance, "p1")
    assert (figures["suspended"], figures["exposure_minor"], figures["queued_orders"]) == (False, 6_000, [])
