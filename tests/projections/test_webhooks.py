"""Webhooks on both databases: registration and isolation over HTTP, the outbox the consumer
writes, and the sender pushing to a real local receiver through an outage."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest
from sqlalchemy import func, select

from libs.events import credit, orders, rebates
from libs.store.database import Database
from services.projections.application.webhook_sender import WebhookSender, webhook_sender
from services.projections.application.webhooks import webhook_deliveries, webhooks
from services.projections.domain.webhooks import (
    WEBHOOK_TYPE_OF,
    WEBHOOK_TYPES,
    RetryPolicy,
    sign,
    url_problem,
)
from services.projections.settings import ProjectionsSettings
from tests.projections.support import Feed, credit_note, invoice, placed, projections, registered
from tests.service_support import ADMIN
from tests.webhook_receiver import Receiver, verify_signature

SECRET = "whsec-test-0123456789"
FAST = ProjectionsSettings(webhook_allow_loopback_http=True, webhook_retry_base_seconds=0.02,
                           webhook_retry_cap_seconds=0.05, webhook_timeout_seconds=2)

# -- the rules, pure -------------------------------------------------------------------------


def test_the_signature_is_what_the_documented_check_accepts() -> None:
    body = b'{"id":"e1","type":"invoice.issued"}'
    import time

    header = sign(SECRET, int(time.time()), body)
    assert header.startswith("t=") and ",v1=" in header
    assert verify_signature(SECRET, header, body)
    assert not verify_signature(SECRET, header, body + b" ")
    assert not verify_signature("another-secret-000000", header, body)
    assert not verify_signature(SECRET, sign(SECRET, int(time.time()) - 3600, body), body)


def test_urls_must_be_https_and_plain_http_only_to_loopback_when_allowed() -> None:
    assert url_problem("https://erp.example.com/hooks", allow_loopback_http=False) is None
    assert url_problem("https://xn--mnchen-3ya.example:8443/h?a=1", allow_loopback_http=False) is None
    assert url_problem("http://127.0.0.1:9000/h", allow_loopback_http=True) is None
    assert url_problem("http://localhost/h", allow_loopback_http=True) is None
    assert url_problem("http://[::1]:8080/h", allow_loopback_http=True) is None
    assert url_problem("http://127.0.0.1:9000/h", allow_loopback_http=False) == "must use https"
    assert url_problem("http://erp.example.com/h", allow_loopback_http=True) is not None
    assert url_problem("http://10.0.0.1/h", allow_loopback_http=True) is not None
    assert url_problem("https://203.0.113.9/h", allow_loopback_http=False) is not None  # reserved
    assert url_problem("https://8.8.8.8/h", allow_loopback_http=False) is None
    for private in ("10.1.2.3", "169.254.169.254", "192.168.0.1", "127.0.0.1", "[::1]", "0.0.0.0"):
        assert url_problem(f"https://{private}/h", allow_loopback_http=False) is not None, private
    assert url_problem("https://127.0.0.1:8443/h", allow_loopback_http=True) is None
    for bad in ("ftp://x.example/", "https://", "erp.example.com", "https://u:p@x.example/",
                "https://x.example:99999/", "https://x.example/#f", "https://x.example:0/",
                "https://exa mple.com/", "https://\u2603.com/", "https://-a.example/", "https://a..b/",
                "https://[1::2::3]/", "https://x.example/\tpath"):
        assert url_problem(bad, allow_loopback_http=True) is not None, bad


def test_the_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(base_seconds=10, cap_seconds=3600, window_seconds=25 * 3600)
    rand = random.Random(7)
    for attempt, ceiling in ((1, 10), (2, 20), (3, 40), (10, 3600), (500, 3600)):
        for _ in range(20):
            assert ceiling / 2 <= policy.delay(attempt, rand) <= ceiling
    # the default keeps retrying for more than 24 hours before a push is marked failed
    assert ProjectionsSettings().retry_policy().window_seconds >= 24 * 3600


def test_every_webhook_type_has_a_source_event() -> None:
    assert set(WEBHOOK_TYPE_OF.values()) == set(WEBHOOK_TYPES)


# -- over HTTP -------------------------------------------------------------------------------


@pytest.fixture
async def feed(db: Database) -> AsyncIterator[Feed]:
    async with projections(db, settings=FAST) as running:
        await running.emit("partner-p1", [registered("p1")])
        await running.emit("partner-p2", [registered("p2")])
        yield running


async def register(feed: Feed, who: dict[str, str], url: str, events: list[str] | None = None,
                   **extra: str) -> httpx.Response:
    return await feed.svc.client.post("/v1/webhooks", headers=who, json={
        "url": url, "secret": SECRET, "events": events or list(WEBHOOK_TYPES), **extra})


async def test_a_partner_manages_its_own_webhooks_and_never_sees_anothers(feed: Feed) -> None:
    client = feed.svc.client
    p1, p2 = await feed.key("partner", "p1"), await feed.key("partner", "p2")
    created = await register(feed, p1, "https://erp.p1.example/hooks", ["order.status_changed"])
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["partner_id"] == "p1" and hook["events"] == ["order.status_changed"]
    assert "secret" not in hook
    other = (await register(feed, p2, "https://erp.p2.example/hooks")).json()

    listed = (await client.get("/v1/webhooks", headers=p1)).json()
    assert [h["id"] for h in listed["items"]] == [hook["id"]]
    assert SECRET not in (await client.get("/v1/webhooks", headers=ADMIN)).text
    assert {h["id"] for h in (await client.get("/v1/webhooks", headers=ADMIN)).json()["items"]} == {
        hook["id"], other["id"]}
    assert [h["id"] for h in (await client.get(
        "/v1/webhooks?partner_id=p1", headers=p2)).json()["items"]] == [other["id"]]

    # another partner's webhook answers 404 on every call, like one that does not exist
    for method, path in (("GET", f"/v1/webhooks/{hook['id']}/deliveries"),
                         ("DELETE", f"/v1/webhooks/{hook['id']}"),
                         ("POST", f"/v1/webhooks/{hook['id']}/deliveries/whd_x/redeliver"),
                         ("GET", "/v1/webhooks/whk_none/deliveries")):
        answer = await client.request(method, path, headers=p2)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    # naming another partner in the body answers 404 too
    assert (await register(feed, p2, "https://x.example/h", partner_id="p1")).status_code == 404

    assert (await client.delete(f"/v1/webhooks/{hook['id']}", headers=p1)).status_code == 204
    assert (await client.get("/v1/webhooks", headers=p1)).json()["items"] == []
    assert (await client.delete(f"/v1/webhooks/{hook['id']}", headers=p1)).status_code == 404


async def test_who_may_register_and_which_urls(feed: Feed) -> None:
    client = feed.svc.client
    finance = await feed.key("finance")
    assert (await register(feed, finance, "https://x.example/h", partner_id="p1")).status_code == 403
    assert (await client.get("/v1/webhooks", headers=finance)).status_code == 403
    missing = await register(feed, ADMIN, "https://x.example/h")
    assert missing.status_code == 422 and missing.json()["type"].endswith("/partner-id-required")
    assert (await register(feed, ADMIN, "https://x.example/h", partner_id="nobody")).status_code == 404
    assert (await register(feed, ADMIN, "https://x.example/h", partner_id="p1")).status_code == 201
    p1 = await feed.key("partner", "p1")
    refused = await register(feed, p1, "http://erp.p1.example/hooks")
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "url"
    assert (await register(feed, p1, "http://127.0.0.1:1/hooks")).status_code == 201  # FAST allows it
    unknown_type = await register(feed, p1, "https://x.example/h", ["order.exploded"])
    assert unknown_type.status_code == 422
    short = await client.post("/v1/webhooks", headers=p1, json={
        "url": "https://x.example/h", "secret": "short", "events": ["invoice.issued"]})
    assert short.status_code == 422


async def test_plain_http_is_refused_unless_the_service_allows_it(db: Database) -> None:
    async with projections(db) as feed:  # the defaults: https only
        await feed.emit("partner-p1", [registered("p1")])
        p1 = await feed.key("partner", "p1")
        assert (await register(feed, p1, "http://127.0.0.1:9/hooks")).status_code == 422
        assert (await register(feed, p1, "https://127.0.0.1:9/hooks")).status_code == 422
        assert (await register(feed, p1, "https://erp.p1.example/hooks")).status_code == 201


async def test_idempotency_key_answers_the_first_registration_again(feed: Feed) -> None:
    p1 = await feed.key("partner", "p1")
    body = {"url": "https://erp.p1.example/h", "secret": SECRET, "events": ["invoice.issued"]}
    first = await feed.svc.client.post("/v1/webhooks", headers={**p1, "Idempotency-Key": "k1"}, json=body)
    again = await feed.svc.client.post("/v1/webhooks", headers={**p1, "Idempotency-Key": "k1"}, json=body)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert len((await feed.svc.client.get("/v1/webhooks", headers=p1)).json()["items"]) == 1


# -- the outbox and the sender ---------------------------------------------------------------


async def push_until(sender: WebhookSender, done: object, seconds: float = 15) -> None:
    """Run sender rounds until ``done()`` holds (retries wait out their short backoff)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not done():  # type: ignore[operator]
        assert loop.time() < deadline, "the pushes did not arrive in time"
        if not await sender.send_due():
            await asyncio.sleep(0.01)


async def delivery_count(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(webhook_deliveries))).scalar_one())


STATUSES = ["placed", "confirmed", "approved", "shipped", "delivered"]


async def order_of(feed: Feed, order_id: str, partner_id: str) -> None:
    await feed.emit(f"order-{order_id}", [
        placed(order_id, partner_id, [("A", 1, 1000)]), orders.OrderConfirmed(order_id=order_id),
        orders.OrderApproved(order_id=order_id), orders.OrderShipped(order_id=order_id),
        orders.OrderDelivered(order_id=order_id)])


async def test_each_status_arrives_once_through_a_receiver_outage(feed: Feed) -> None:
    client, db = feed.svc.client, feed.svc.ctx.db
    p1, p2 = await feed.key("partner", "p1"), await feed.key("partner", "p2")
    mine, theirs = Receiver(SECRET, failing=True).start(), Receiver(SECRET).start()
    try:
        hook = (await register(feed, p1, mine.url, ["order.status_changed", "invoice.issued",
                                                    "credit_note.issued", "settlement.approved"])).json()
        await register(feed, p2, theirs.url, ["order.status_changed"])
        await order_of(feed, "o1", "p1")
        await order_of(feed, "o2", "p2")
        [issued] = await feed.emit("invoice-i1", [invoice("i1", "o1", "p1", issued_on=date(2025, 1, 3),
                                                          due_on=date(2025, 2, 2))])
        await feed.emit("note-c1", [credit_note("c1", "p1", 100)])
        await feed.emit("settlement-s1", [rebates.SettlementApproved(
            settlement_id="s1", program_id="r1", partner_id="p1", payout_minor=50, approved_by="f2")])
        await feed.emit("debit-d1", [credit.DebitNoteIssued(  # p1's hook did not ask for these
            debit_note_id="d1", partner_id="p1", amount_minor=5, reason="true-up", source_ref="s0",
            issued_on=date(2025, 3, 1), due_on=date(2025, 3, 31))])
        queued = await delivery_count(db)
        assert queued == 5 + 3 + 5  # p1: five statuses, invoice, credit note, settlement; p2: five
        # the broker delivers an event again: it queues no second push
        await feed.svc.consumer.handle(issued)
        assert await delivery_count(db) == queued

        http = httpx.AsyncClient(timeout=2)
        sender = WebhookSender(db, http, FAST, random.Random(1))
        # the outage: every push to p1 answers 500 and is retried, p2's arrive
        await push_until(sender, lambda: len(mine.pushes) >= 16 and len(theirs.by_id) == 5)
        assert mine.by_id == {}
        log = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=p1)).json()["items"]
        assert {d["status"] for d in log} == {"pending"}
        assert all(d["last_status_code"] == 500 and d["log"][0]["status_code"] == 500 for d in log)
        # recovery: each event arrives, once after deduplication on its id
        mine.failing = False
        await push_until(sender, lambda: len(mine.by_id) == 8)
        async with db.read() as conn:
            pending = (await conn.execute(select(func.count()).select_from(webhook_deliveries).where(
                webhook_deliveries.c.status != "delivered"))).scalar_one()
        assert pending == 0
        statuses = sorted((p["data"]["order_id"], p["data"]["status"]) for p in mine.by_id.values()
                          if p["type"] == "order.status_changed")
        assert statuses == sorted(("o1", s) for s in STATUSES)
        assert {p["type"] for p in mine.by_id.values()} == {
            "order.status_changed", "invoice.issued", "credit_note.issued", "settlement.approved"}
        assert all(p["partner_id"] == "p1" for p in mine.pushes)
        assert all(p["partner_id"] == "p2" for p in theirs.pushes) and len(theirs.by_id) == 5
        assert mine.unsigned == theirs.unsigned == 0

        # the log: newest first, every attempt, a redelivery pushes the same event id again
        log = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries?limit=3", headers=p1)).json()
        assert len(log["items"]) == 3 and log["next_cursor"]
        rest = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries?cursor={log['next_cursor']}",
                                 headers=p1)).json()
        assert len(log["items"]) + len(rest["items"]) == 8
        first = rest["items"][-1]
        assert first["status"] == "delivered" and first["attempts"] >= 2
        assert [a["status_code"] for a in first["log"]][-1] == 204
        assert first["payload"]["id"] == first["event_id"]
        redone = await client.post(
            f"/v1/webhooks/{hook['id']}/deliveries/{first['id']}/redeliver", headers=p1)
        assert redone.status_code == 202 and redone.json()["status"] == "pending"
        await push_until(sender, lambda: mine.duplicates == 1)
        assert len(mine.by_id) == 8
        # another partner can neither read nor redeliver it
        assert (await client.post(f"/v1/webhooks/{hook['id']}/deliveries/{first['id']}/redeliver",
                                  headers=p2)).status_code == 404
        await http.aclose()
    finally:
        mine.stop()
        theirs.stop()


async def test_a_push_is_marked_failed_after_its_window_and_can_be_redelivered(db: Database) -> None:
    settings = FAST.model_copy(update={"webhook_retry_window_seconds": 0})
    receiver = Receiver(SECRET).reserve_port()  # nothing listens yet: connections are refused
    async with projections(db, settings=settings) as feed:
        await feed.emit("partner-p1", [registered("p1")])
        p1 = await feed.key("partner", "p1")
        hook = (await register(feed, p1, receiver.url, ["order.status_changed"])).json()
        await feed.emit("order-o9", [placed("o9", "p1", [("A", 1, 1000)])])
        async with httpx.AsyncClient(timeout=2) as http:
            sender = WebhookSender(db, http, settings)
            assert await sender.send_due() == 1
            [failed] = (await feed.svc.client.get(f"/v1/webhooks/{hook['id']}/deliveries",
                                                  headers=p1)).json()["items"]
            assert failed["status"] == "failed" and failed["next_attempt_at"] is None
            assert failed["last_status_code"] is None and "ConnectError" in failed["last_error"]
            assert await sender.send_due() == 0
            receiver.start()
            try:
                await feed.svc.client.post(
                    f"/v1/webhooks/{hook['id']}/deliveries/{failed['id']}/redeliver", headers=p1)
                await push_until(sender, lambda: len(receiver.by_id) == 1)
            finally:
                receiver.stop()
        [pushed] = receiver.by_id.values()
        assert pushed["id"] == failed["event_id"] and pushed["data"]["status"] == "placed"


async def test_a_deleted_webhook_gets_nothing_more(feed: Feed) -> None:
    p1 = await feed.key("partner", "p1")
    hook = (await register(feed, p1, "https://erp.p1.example/h", ["order.status_changed"])).json()
    await feed.emit("order-o3", [placed("o3", "p1", [("A", 1, 1000)])])
    assert (await feed.svc.client.delete(f"/v1/webhooks/{hook['id']}", headers=p1)).status_code == 204
    async with feed.svc.ctx.db.read() as conn:
        statuses = (await conn.execute(select(webhook_deliveries.c.status))).scalars().all()
        secrets = (await conn.execute(select(webhooks.c.secret))).scalars().all()
    assert statuses == ["cancelled"] and secrets == [""]
    await feed.emit("order-o3", [orders.OrderConfirmed(order_id="o3")])
    assert await delivery_count(feed.svc.ctx.db) == 1


async def test_two_sender_tasks_on_one_store_push_each_event_once(feed: Feed) -> None:
    """Replicas: only the holder of the sender lease pushes, so a due push is not sent twice."""
    p1 = await feed.key("partner", "p1")
    receiver = Receiver(SECRET).start()
    try:
        await register(feed, p1, receiver.url, ["order.status_changed"])
        for n in range(4):
            await order_of(feed, f"o{n}", "p1")
        settings = FAST.model_copy(update={"webhook_poll_seconds": 0.01})
        stop = asyncio.Event()
        replicas = [asyncio.create_task(webhook_sender(settings)(feed.svc.ctx, stop)) for _ in range(2)]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while len(receiver.by_id) < 4 * len(STATUSES):
            assert loop.time() < deadline, "the pushes did not arrive in time"
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.gather(*replicas)
        assert receiver.duplicates == 0 and len(receiver.pushes) == 4 * len(STATUSES)
    finally:
        receiver.stop()
