"""The one command path (``libs.runtime.commands`` + ``libs.runtime.idempotency``), on both databases.

- a route's idempotency scope is its method and path template, taken from the matched route,
  with the path parameters' values;
- one key sent to two different path parameters never replays the other's answer;
- a command runs again, from a fresh transaction and a fresh load, on a concurrency conflict,
  and what the failed attempt wrote is gone;
- a reaction joins the consumer's transaction and does not retry by itself.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from libs.events.base import DomainEvent, EventMetadata
from libs.events.envelope import GENESIS_HASH
from libs.events.orders import PriceListPublished
from libs.messaging.inbox import Delivery
from libs.messaging.work import BatchWork
from libs.runtime import commands, documents
from libs.runtime.commands import Aggregate, Loaded, Unit
from libs.runtime.idempotency import route_key
from libs.store.database import Database
from libs.store.errors import ConcurrencyError
from libs.store.schema import idempotency_keys
from services.partners.app import SPEC as PARTNERS
from tests.partners.support import partner_body
from tests.service_support import ADMIN, RunningService, running

AGREEMENT = {"kind": "annual", "starts_on": "2025-01-01", "ends_on": "2025-12-31"}


@pytest.fixture
async def partners(db: Database) -> AsyncIterator[RunningService]:
    async with running(PARTNERS, db) as svc:
        yield svc


async def _register(svc: RunningService, legal_id: str) -> str:
    response = await svc.client.post("/v1/partners", json=partner_body(legal_id=legal_id), headers=ADMIN)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _stored_routes(svc: RunningService) -> list[str]:
    async with svc.ctx.db.read() as conn:
        return sorted(row[0] for row in await conn.execute(select(idempotency_keys.c.route)))


async def test_the_route_key_is_the_method_and_the_path_template(partners: RunningService) -> None:
    partner_id = await _register(partners, "LEGAL-1")
    headers = ADMIN | {"Idempotency-Key": "sign-1"}
    first = await partners.client.post(f"/v1/partners/{partner_id}/agreements", json=AGREEMENT,
                                       headers=headers)
    again = await partners.client.post(f"/v1/partners/{partner_id}/agreements", json=AGREEMENT,
                                       headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    assert again.content == first.content  # replayed byte for byte
    assert await _stored_routes(partners) == [
        f"POST /v1/partners/{{partner_id}}/agreements partner_id={partner_id}"]


async def test_one_key_on_two_path_params_never_replays_the_other(partners: RunningService) -> None:
    first_id, second_id = await _register(partners, "LEGAL-A"), await _register(partners, "LEGAL-B")
    headers = ADMIN | {"Idempotency-Key": "same-key"}
    first = await partners.client.post(f"/v1/partners/{first_id}/agreements", json=AGREEMENT,
                                       headers=headers)
    assert first.status_code == 201 and first.json()["id"] == first_id
    second = await partners.client.post(f"/v1/partners/{second_id}/agreements", json=AGREEMENT,
                                        headers=headers)
    assert second.status_code == 201, second.text
    assert second.json()["id"] == second_id and second.json()["status"] == "active"
    replayed = await partners.client.post(f"/v1/partners/{first_id}/agreements", json=AGREEMENT,
                                          headers=headers)
    assert replayed.content == first.content
    other_body = await partners.client.post(f"/v1/partners/{second_id}/agreements",
                                            json={**AGREEMENT, "ends_on": "2025-11-30"}, headers=headers)
    assert other_body.status_code == 409
    assert other_body.json()["type"].endswith("idempotency-key-reused")
    assert len(await _stored_routes(partners)) == 2


def test_a_long_path_parameter_keeps_the_route_key_within_its_column() -> None:
    short = route_key("POST /v1/holds/{order_id}/release", {"order_id": "ord_1"})
    assert short == "POST /v1/holds/{order_id}/release order_id=ord_1"
    long = route_key("POST /v1/holds/{order_id}/release", {"order_id": "o" * 200})
    other = route_key("POST /v1/holds/{order_id}/release", {"order_id": "o" * 199 + "p"})
    assert len(long) <= 200 and long.startswith("POST /v1/holds/{order_id}/release sha256:")
    assert long != other


async def test_a_key_over_200_characters_is_refused(partners: RunningService) -> None:
    response = await partners.client.post("/v1/partners", json=partner_body(),
                                          headers=ADMIN | {"Idempotency-Key": "k" * 201})
    assert response.status_code == 409
    assert response.json()["type"].endswith("bad-idempotency-key")
    assert (await partners.client.get("/v1/partners", headers=ADMIN)).json()["items"] == []


# -- the path without HTTP ------------------------------------------------------------------


def _price_list(tier: str) -> dict[str, Any]:
    return {"tier": tier, "versions": 0}


def _evolve(state: dict[str, Any], event: DomainEvent) -> dict[str, Any]:
    return {**state, "versions": state["versions"] + 1}


async def _write(unit: Unit, loaded: Loaded[str, dict[str, Any]], events: Sequence[DomainEvent],
                 before: dict[str, Any]) -> dict[str, Any]:
    await documents.put(unit.conn, "test-price-list", loaded.key, loaded.state, version=loaded.version)
    return loaded.state


TIERS: Aggregate[str, dict[str, Any]] = Aggregate(
    stream_type="price-list", stream_id=lambda tier: f"test-tier-{tier}", initial=_price_list,
    evolve=_evolve, project=_write)


def _published(version: int) -> PriceListPublished:
    return PriceListPublished(tier="A", version=version, effective_from=date(2026, 1, 1),
                              discount_bp=0, overrides=[], currency="CNY")


async def test_a_conflict_runs_the_command_again_from_a_fresh_load(partners: RunningService) -> None:
    ctx = partners.ctx
    meta = EventMetadata(actor="test")
    seen_versions: list[int] = []

    async def publish(unit: Unit) -> dict[str, Any] | None:
        loaded = await unit.load(TIERS, "A")
        seen_versions.append(loaded.version)
        saved = await unit.save(loaded, [_published(loaded.version + 1)])
        if len(seen_versions) == 1:  # as if another writer had moved the stream on meanwhile
            raise ConcurrencyError("test-tier-A", loaded.version, "moved on")
        return saved.document

    answer = await commands.run(ctx, meta, publish)
    assert seen_versions == [0, 0]  # the first attempt's append was rolled back with it
    assert answer == {"tier": "A", "versions": 1}
    async with ctx.db.read() as conn:
        assert [e.stream_version for e in await ctx.store.load("test-tier-A", conn=conn)] == [1]
        assert await documents.get(conn, "test-price-list", "A") == {"tier": "A", "versions": 1}


async def test_a_reaction_joins_the_consumers_transaction_and_never_retries(
        partners: RunningService) -> None:
    ctx = partners.ctx
    calls = 0

    async def react(unit: Unit, event: Any) -> None:
        nonlocal calls
        calls += 1
        loaded = await unit.load(TIERS, "B")
        saved = await unit.save(loaded, [event], salt="tier")
        assert saved.stored[0].event_id == unit.event_ids(1, "tier")[0]  # type: ignore[index]
        raise ConcurrencyError("test-tier-B", 0, "moved on")

    envelope = SimpleNamespace(event_id=uuid.uuid4(), correlation_id=uuid.uuid4())
    with pytest.raises(ConcurrencyError):
        async with ctx.db.transaction() as conn:
            delivery = SimpleNamespace(conn=conn, envelope=envelope, event=_published(1),
                                       meta=EventMetadata(actor="system:test"), work=None,
                                       event_ids=lambda count, salt="": [
                                           uuid.uuid5(envelope.event_id, f"test:{salt}:{i}")
                                           for i in range(count)])
            await commands.react(ctx, react, delivery)  # type: ignore[arg-type]
    assert calls == 1  # the consumer retries the delivery; the path does not
    async with ctx.db.read() as conn:
        assert await ctx.store.load("test-tier-B", conn=conn) == []  # rolled back with the consumer's
        assert await documents.get(conn, "test-price-list", "B") is None


async def test_reactions_of_one_batch_read_a_stream_they_appended_to_only_once(
        partners: RunningService, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a consumer batch, the second reaction to a stream starts from the state the first
    saved (no read); the ids stay the delivery's own; another batch reads the store again."""
    ctx = partners.ctx
    reads: list[str] = []
    read = commands.read

    async def counting_read(*args: Any) -> Any:
        reads.append(args[3])
        return await read(*args)

    monkeypatch.setattr(commands, "read", counting_read)

    async def publish(unit: Unit, event: Any) -> None:
        loaded = await unit.load(TIERS, "D")
        await unit.save(loaded, [_published(loaded.version + 1)], salt="tier")

    async def batch(count: int) -> list[uuid.UUID]:
        work, ids = BatchWork(), []
        async with ctx.db.transaction() as conn:
            for _ in range(count):
                envelope = SimpleNamespace(event_id=uuid.uuid4(), correlation_id=uuid.uuid4())
                delivery = Delivery(conn, envelope, _published(1), "test", work)  # type: ignore[arg-type]
                await commands.react(ctx, publish, delivery)
                ids += delivery.event_ids(1, "tier")
            await work.finish()
        return ids

    first = await batch(3)
    assert reads == ["D"]
    second = await batch(2)
    assert reads == ["D", "D"]
    async with ctx.db.read() as conn:
        stored = await ctx.store.load("test-tier-D", conn=conn)
        assert await documents.get(conn, "test-price-list", "D") == {"tier": "D", "versions": 5}
    assert [e.stream_version for e in stored] == [1, 2, 3, 4, 5]
    assert [e.event_id for e in stored] == first + second
    previous = GENESIS_HASH  # appends after the first of a batch chain onto the head it wrote
    for envelope in stored:
        assert ctx.store.chain.check(envelope.stream_hash, envelope.chain_parts(previous)) == "ok"
        previous = envelope.stream_hash
