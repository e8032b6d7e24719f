"""Audit over HTTP on both databases: archived events with hashes, and verification of every store."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from sqlalchemy import select, update

from libs.events import orders
from libs.events.base import EventMetadata
from libs.messaging.consumer import Outcome
from libs.store.database import Database
from libs.store.schema import events
from services.projections.api.schemas import AuditPage
from services.projections.application.anchors import seal_anchors
from services.projections.application.archive import archive
from services.projections.domain.publishers import PUBLISHERS
from tests.forgery import forge_head, seal_everything, truncate_newest
from tests.projections.support import (
    Feed,
    PeerApps,
    caused_by,
    peer_app,
    placed,
    projections,
    registered,
    rendered,
)
from tests.service_support import ADMIN


async def test_audit_events_page_by_received_seq_with_filters(db: Database) -> None:
    async with projections(db) as feed:
        auditor = await feed.key("auditor")
        await feed.emit("partner-p1", [registered("p1")])
        conversation = EventMetadata(actor="partner:k1")
        await feed.emit("order-o1", [placed("o1", "p1", [("A", 1, 100)]),
                                     orders.OrderConfirmed(order_id="o1"),
                                     orders.OrderApproved(order_id="o1")], meta=conversation)
        client = feed.svc.client
        seen, cursor = [], None
        while True:
            query = "limit=2" + (f"&after={cursor}" if cursor else "")
            answer = await client.get(f"/v1/audit/events?{query}", headers=auditor)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            seen += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert len(page["items"]) == 2
        assert [item["type"] for item in seen] == [
            "KeyIssued", "PartnerRegistered", "OrderPlaced", "OrderConfirmed", "OrderApproved"]
        assert [item["received_seq"] for item in seen] == sorted(i["received_seq"] for i in seen)
        placed_item = seen[2]
        assert placed_item["service"] == "orders" and placed_item["stream_hash"].startswith("k1:")
        assert placed_item["data"]["order_id"] == "o1" and placed_item["schema_version"] == 1
        as_cursor = await client.get(f"/v1/audit/events?cursor={seen[1]['received_seq']}",
                                     headers=ADMIN)
        assert [i["type"] for i in as_cursor.json()["items"]] == [i["type"] for i in seen[2:]]

        async def types(query: str) -> list[str]:
            answer = await client.get(f"/v1/audit/events?{query}", headers=auditor)
            assert answer.status_code == 200, answer.text
            return [item["type"] for item in answer.json()["items"]]

        assert await types("service=partners") == ["KeyIssued", "PartnerRegistered"]
        assert await types("stream_id=partner-p1") == ["PartnerRegistered"]
        assert await types(f"correlation_id={conversation.correlation_id}") == [
            "OrderPlaced", "OrderConfirmed", "OrderApproved"]
        assert await types(f"correlation_id={uuid.uuid4()}") == []
        for bad in ("correlation_id=nope", "limit=0", "limit=501", "after=-1", "service=billing",
                    "cursor=abc", f"after={2**63}", f"cursor={2**64}", f"stream_id={'s' * 201}"):
            assert (await client.get(f"/v1/audit/events?{bad}", headers=auditor)).status_code == 422
        finance = await feed.key("finance")
        assert (await client.get("/v1/audit/events", headers=finance)).status_code == 403
        assert (await client.get("/v1/audit/events")).status_code == 401


async def test_the_feed_answers_as_its_model_renders_with_the_ids_as_published(db: Database) -> None:
    async with projections(db) as feed:
        auditor = await feed.key("auditor")
        [placement] = await feed.emit("order-o1", [placed("o1", "p1", [("A", 1, 100)])])
        [confirmed] = await feed.emit("order-o1", [orders.OrderConfirmed(order_id="o1")],
                                      meta=caused_by(placement))
        for query in ("", "&service=orders&stream_id=order-o1",
                      f"&correlation_id={placement.correlation_id}"):
            answer = await feed.svc.client.get(f"/v1/audit/events?limit=500{query}", headers=auditor)
            assert answer.status_code == 200, answer.text
            items = answer.json()["items"][-2:]
            assert [(i["event_id"], i["causation_id"], i["correlation_id"]) for i in items] == [
                (str(placement.event_id), None, str(placement.correlation_id)),
                (str(confirmed.event_id), str(placement.event_id), str(placement.correlation_id))]
            assert items[0]["data"] == placement.payload()
            assert items[1]["stream_hash"] == confirmed.stream_hash
            assert answer.content == rendered(AuditPage, answer)


async def test_verify_checks_every_service_and_the_archive(db: Database) -> None:
    peers = PeerApps()
    async with projections(db, peers) as feed:
        for service in PUBLISHERS:
            peers.serve(service, peer_app(db, feed.svc))
        auditor = await feed.key("auditor")
        await feed.emit("partner-p1", [registered("p1")])
        await feed.emit("order-o1", [placed("o1", "p1", [("A", 1, 100)]),
                                     orders.OrderConfirmed(order_id="o1")])
        client = feed.svc.client
        answer = await client.get("/v1/audit/verify", headers=auditor)
        assert answer.status_code == 200, answer.text
        report = answer.json()
        assert report["ok"] is True and "first_bad" not in report
        assert set(report["services"]) == {*PUBLISHERS, "projections"}
        archived = report["services"]["projections"]
        assert (archived["ok"], archived["checked"], archived["first_bad"]) == (True, 4, None)
        assert report["services"]["credit"]["checked"] == 4
        assert report["checked"] == 4 * 6

        async with db.transaction() as conn:
            seq = (await conn.execute(select(archive.c.received_seq).where(
                archive.c.event_type == "OrderPlaced"))).scalar_one()
            await conn.execute(update(archive).where(archive.c.received_seq == seq)
                               .values(data='{"order_id":"o1","total_minor":1}'))
        report = (await client.get("/v1/audit/verify", headers=ADMIN)).json()
        assert report["ok"] is False
        assert report["services"]["projections"]["ok"] is False
        assert report["services"]["projections"]["first_bad"] == seq
        assert report["services"]["orders"]["ok"] is True
        assert report["first_bad"] == {"service": "projections", "position": seq}

        async with db.transaction() as conn:
            position = (await conn.execute(select(events.c.position).where(
                events.c.event_type == "OrderConfirmed"))).scalar_one()
            await conn.execute(update(events).where(events.c.position == position)
                               .values(data='{"order_id":"o2"}'))
        report = (await client.get("/v1/audit/verify", headers=auditor)).json()
        assert report["services"]["orders"]["ok"] is False
        assert report["services"]["orders"]["first_bad"] == position
        assert report["first_bad"] == {"service": "partners", "position": position}


async def test_a_service_that_does_not_answer_fails_verification(db: Database) -> None:
    peers = PeerApps()
    async with projections(db, peers) as feed:
        for service in PUBLISHERS[:-1]:
            peers.serve(service, peer_app(db, feed.svc))
        auditor = await feed.key("auditor")
        report = (await feed.svc.client.get("/v1/audit/verify", headers=auditor)).json()
        assert report["ok"] is False
        assert report["services"]["rebates"]["ok"] is False
        assert "unreachable" in report["services"]["rebates"]["error"]
        assert report["services"]["partners"]["ok"] is True
        assert report["first_bad"] == {"service": "rebates", "position": None}
        finance = await feed.key("finance")
        assert (await feed.svc.client.get("/v1/audit/verify", headers=finance)).status_code == 403


async def test_own_store_verification_route(db: Database) -> None:
    async with projections(db) as feed:
        auditor = await feed.key("auditor")
        answer = await feed.svc.client.get("/internal/audit/verify", headers=auditor)
        assert answer.status_code == 200
        assert answer.json()["ok"] is True and answer.json()["checked"] == 1
        finance = await feed.key("finance")
        assert (await feed.svc.client.get("/internal/audit/verify", headers=finance)).status_code == 403
        assert (await feed.svc.client.get("/internal/audit/verify")).status_code == 401


@asynccontextmanager
async def keyed_projections(db: Database) -> AsyncIterator[tuple[Feed, dict[str, str]]]:
    """Projections and a stand-in for every publisher over ``db``, all under the tests' audit
    key, with an auditor's key (its ``KeyIssued`` is the first event)."""
    peers = PeerApps()
    async with projections(db, peers) as feed:
        for service in PUBLISHERS:
            peers.serve(service, peer_app(db, feed.svc))
        yield feed, await feed.key("auditor")


async def test_verify_under_the_audit_key_finds_a_forged_head_event(
    db: Database,
) -> None:
    """The forged event is archived as if the relay had published it; both copies name it."""
    async with keyed_projections(db) as (feed, auditor):
        stream = await feed.emit("order-o1", [placed("o1", "p1", [("A", 1, 100)]),
                                              orders.OrderConfirmed(order_id="o1")])
        client = feed.svc.client
        report = (await client.get("/v1/audit/verify", headers=auditor)).json()
        assert report["ok"] is True and report["mode"] == "keyed", report
        assert report["services"]["orders"]["links"] == {"k1": 3}  # the key's stream + order's two
        assert report["services"]["projections"]["links"] == {"k1": 3}

        forged = await forge_head(db, stream[-1], orders.OrderApproved(order_id="o1"),
                                  actor="system:orders")
        assert await feed.svc.consumer.handle(forged) == Outcome.APPLIED
        report = (await client.get("/v1/audit/verify", headers=auditor)).json()
        assert report["ok"] is False
        orders_report = report["services"]["orders"]
        assert orders_report["first_bad"] == forged.position
        assert [p["kind"] for p in orders_report["problems"]] == ["unkeyed"]
        archived = report["services"]["projections"]
        assert archived["ok"] is False
        assert [(p["stream_id"], p["stream_version"], p["kind"]) for p in archived["problems"]] == [
            ("order-o1", 3, "unkeyed")]
        assert any("downgrade" in w for w in archived["warnings"])


async def test_verify_anchors_every_seal_head_and_finds_a_truncation_behind_it(
    db: Database, broker_bootstrap: str,
) -> None:
    """A store cut short with its seals verifies under the key; the anchor kept in the
    projections' database finds it, verification after verification, and the archive still
    holds the removed event."""
    async with keyed_projections(db) as (feed, auditor):
        await feed.emit("order-o1", [placed("o1", "p1", [("A", 1, 100)]),
                                     orders.OrderConfirmed(order_id="o1")])
        await seal_everything(feed.store, broker_bootstrap)
        client = feed.svc.client

        first = (await client.get("/v1/audit/verify", headers=auditor)).json()
        assert first["ok"] is True, first
        head = first["services"]["orders"]["seal_head"]
        assert head["seq"] == 3 and "anchor" not in first["services"]["orders"]
        async with db.read() as conn:
            kept = (await conn.execute(select(seal_anchors))).mappings().all()
        assert {(row["service"], row["seq"], row["chain_hash"]) for row in kept} == {
            (service, 3, head["chain_hash"]) for service in PUBLISHERS}

        second = (await client.get("/v1/audit/verify", headers=auditor)).json()
        assert second["ok"] is True and second["services"]["orders"]["anchor"] == head

        removed = await truncate_newest(db)
        for _ in range(2):  # the anchor does not move back to the shortened chain
            report = (await client.get("/v1/audit/verify", headers=auditor)).json()
            assert report["ok"] is False
            orders_report = report["services"]["orders"]
            assert [(p["position"], p["kind"]) for p in orders_report["problems"]] == [
                (removed, "rolled-back")]
            assert report["services"]["projections"]["ok"] is True
        async with db.read() as conn:
            assert (await conn.execute(select(archive.c.position).where(
                archive.c.position == removed))).scalar_one() == removed


async def test_an_incomplete_anchor_is_a_problem_not_a_500(db: Database) -> None:
    async with projections(db) as feed:
        app = peer_app(db, feed.svc)
        auditor = await feed.key("auditor")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://peer") as peer:
            answer = await peer.get("/internal/audit/verify?anchor_seq=3", headers=auditor)
            assert answer.status_code == 422
            assert answer.json()["type"].endswith("incomplete-anchor")
            for bad in ("anchor_seq=0", "anchor_seq=x", f"anchor_hash={'h' * 65}"):
                assert (await peer.get(f"/internal/audit/verify?{bad}",
                                       headers=auditor)).status_code == 422
