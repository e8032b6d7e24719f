"""Keyed chains (HMAC under a key the database never holds): what someone with database access
alone can no longer do, on SQLite and PostgreSQL.

Every attack here is made with write access to the database and the public (unkeyed) formula,
exactly as an attacker without the key would, after the relay sealed the store.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select, update

from libs.events.base import EventMetadata
from libs.events.chain import UNKEYED, Chain, parse_audit_keys
from libs.events.envelope import GENESIS_HASH
from libs.store.database import Database
from libs.store.integrity import seal_hash, verify
from libs.store.schema import event_seals, events, relay_state
from libs.store.store import EventStore
from tests.forgery import forge_head, seal_everything, truncate_newest
from tests.libs.sample_events import CounterIncremented

META = EventMetadata(actor="test")
K1 = "k1:" + "1" * 40
K2 = "k2:" + "2" * 40
KEYED = Chain(parse_audit_keys(K1))
ROTATED = Chain(parse_audit_keys(f"{K2},{K1}"))


async def _fill(store: EventStore, first_version: int = 0, versions: int = 3) -> None:
    for version in range(first_version, first_version + versions):
        for stream in ("a", "b"):
            await store.append(stream, "counter", version,
                               [CounterIncremented(amount_minor=version)], META)


@pytest.fixture
async def keyed(db: Database, broker_bootstrap: str, request) -> EventStore:  # type: ignore[no-untyped-def]
    """Two streams of three events, linked under k1, published and sealed by the relay."""
    store = EventStore(db, chain=KEYED)
    await _fill(store)
    await seal_everything(store, broker_bootstrap)
    return store


async def _forge_head(db: Database, stream_id: str, link: Chain = UNKEYED) -> int:
    """Append a forged event at the head of ``stream_id`` straight into the table."""
    head = (await EventStore(db).load(stream_id))[-1]
    forged = await forge_head(db, head, CounterIncremented(amount_minor=10**9), chain=link)
    assert forged.position is not None
    return forged.position


async def _recompute_everything(db: Database, *, data: str | None = None) -> None:
    """What a forger without the key can do at most: rewrite (``data``) and relink every event
    with the public formula, then recompute every seal and the relay's seal head."""
    store = EventStore(db)
    async with db.transaction() as conn:
        streams = (await conn.execute(select(events.c.stream_id).distinct())).scalars().all()
    links: dict[int, str] = {}
    async with db.transaction() as conn:
        for stream_id in streams:
            previous = GENESIS_HASH
            for envelope in await store.load(stream_id, conn=conn):
                envelope = replace(envelope, data=data or envelope.data)
                previous = envelope.chained_hash(previous)
                assert envelope.position is not None
                links[envelope.position] = previous
                await conn.execute(update(events).where(events.c.position == envelope.position)
                                   .values(data=envelope.data, stream_hash=previous))
        head = GENESIS_HASH
        seals = (await conn.execute(select(event_seals.c.seq, event_seals.c.position)
                                    .order_by(event_seals.c.seq))).all()
        for seq, position in seals:
            head = seal_hash(head, position, links[position])
            await conn.execute(update(event_seals).where(event_seals.c.seq == seq)
                               .values(stream_hash=links[position], chain_hash=head))
        await conn.execute(update(relay_state).values(sealed_hash=head))


async def test_keyed_store_verifies_under_its_key(keyed: EventStore) -> None:
    report = await verify(keyed.db, KEYED)
    assert report.ok, report.as_dict()
    summary = report.as_dict()
    assert summary["mode"] == "keyed" and "warnings" not in summary
    assert summary["links"] == {"k1": 12}  # six stream links, six seals
    [link] = [e.stream_hash for e in await keyed.load("a")][:1]
    assert link is not None and link.startswith("k1:") and len(link) <= 64


async def test_forged_head_event_with_a_correct_unkeyed_hash_is_found(
    keyed: EventStore, broker_bootstrap: str,
) -> None:
    forged = await _forge_head(keyed.db, "b")
    await seal_everything(keyed, broker_bootstrap)  # and sealed
    report = await verify(keyed.db, KEYED)
    assert not report.ok
    assert report.first_bad == forged
    assert {p.kind for p in report.problems} == {"unkeyed"}
    assert any("downgrade" in w for w in report.as_dict()["warnings"])


async def test_unkeyed_mode_is_fooled_by_a_forged_head_event_and_says_it_can_be(
    db: Database, broker_bootstrap: str,
) -> None:
    """Why keys exist: without one, a forged event with the public hash passes, as documented."""
    store = EventStore(db)
    await _fill(store, versions=1)
    await _forge_head(db, "a")
    await seal_everything(store, broker_bootstrap)
    report = (await verify(db)).as_dict()
    assert report["ok"] is True and report["mode"] == "unkeyed"
    assert "not someone with database access" in report["warnings"][0]


async def test_forged_head_event_claiming_the_key_id_is_found(keyed: EventStore) -> None:
    """Writing "k1:" in front of a link does not make it one: only the key computes it."""
    guessed = Chain(parse_audit_keys("k1:" + "guessed-secret-" * 3))
    forged = await _forge_head(keyed.db, "a", link=guessed)
    report = await verify(keyed.db, KEYED)
    assert [(p.position, p.kind) for p in report.problems] == [(forged, "altered")]


async def test_keyless_full_recompute_is_found(keyed: EventStore) -> None:
    await _recompute_everything(keyed.db, data='{"amount_minor":7,"poison":false}')
    assert (await verify(keyed.db)).ok  # consistent under the public formula
    report = await verify(keyed.db, KEYED)
    assert not report.ok
    kinds = {p.kind for p in report.problems}
    assert kinds == {"unkeyed", "seal-unkeyed"}
    assert report.first_bad == min(e.position or 0 for e in await keyed.load("a"))


async def test_downgrade_of_keyed_links_to_unkeyed_ones_is_found(keyed: EventStore) -> None:
    """Same content, every keyed link replaced by the public one: still found, and named."""
    await _recompute_everything(keyed.db)
    report = await verify(keyed.db, KEYED)
    assert not report.ok
    assert report.as_dict()["links"] == {"unkeyed": 12}
    assert {p.kind for p in report.problems} == {"unkeyed", "seal-unkeyed"}


async def test_rotation_keeps_old_links_valid(keyed: EventStore, broker_bootstrap: str) -> None:
    """k2 becomes the signing key; what k1 signed still verifies, in streams and seals."""
    rotated = EventStore(keyed.db, chain=ROTATED)
    await _fill(rotated, first_version=3, versions=2)
    await seal_everything(rotated, broker_bootstrap)
    report = await verify(keyed.db, ROTATED)
    assert report.ok, report.as_dict()
    assert report.as_dict()["links"] == {"k1": 12, "k2": 8}
    newest = (await rotated.load("a"))[-1]
    assert newest.stream_hash is not None and newest.stream_hash.startswith("k2:")


async def test_a_retired_key_that_is_no_longer_configured_is_reported(
    keyed: EventStore, broker_bootstrap: str,
) -> None:
    rotated = EventStore(keyed.db, chain=ROTATED)
    await _fill(rotated, first_version=3, versions=1)
    await seal_everything(rotated, broker_bootstrap)
    report = await verify(keyed.db, Chain(parse_audit_keys(K2)))
    assert not report.ok
    assert {p.kind for p in report.problems} == {"unknown-key", "seal-unknown-key"}
    assert any("not configured (seen: k1, k2)" in w for w in report.as_dict()["warnings"])


async def test_wrong_or_missing_key_is_a_clear_report_not_a_crash(keyed: EventStore) -> None:
    wrong_secret = await verify(keyed.db, Chain(parse_audit_keys("k1:" + "x" * 40)))
    assert not wrong_secret.ok
    assert {p.kind for p in wrong_secret.problems} == {"altered", "seal-altered"}

    missing = (await verify(keyed.db)).as_dict()
    assert missing["ok"] is False and missing["mode"] == "unkeyed"
    assert {p["kind"] for p in missing["problems"]} == {"unknown-key", "seal-unknown-key"}
    assert any("no audit key is configured" in w for w in missing["warnings"])


async def test_an_unkeyed_store_under_a_configured_key_is_reported(
    db: Database, broker_bootstrap: str,
) -> None:
    """Data written before the key (or by a service without it): reported, link by link."""
    store = EventStore(db)
    await _fill(store, versions=2)
    await seal_everything(store, broker_bootstrap)
    keyed = EventStore(db, chain=KEYED)
    await _fill(keyed, first_version=2, versions=1)
    report = (await verify(db, KEYED)).as_dict()
    assert report["ok"] is False and report["mode"] == "keyed"
    assert report["links"] == {"k1": 2, "unkeyed": 8}
    assert {p["kind"] for p in report["problems"]} == {"unkeyed", "seal-unkeyed"}
    assert any("8 links carry no key" in w for w in report["warnings"])
    assert (await verify(db)).as_dict()["problems"][0]["kind"] == "unknown-key"


async def test_truncation_passes_the_keys_but_not_an_anchor_kept_elsewhere(
    keyed: EventStore,
) -> None:
    """Cutting off the newest events with their seals leaves only valid links; the seal head
    anchored outside the store (projections keeps one per publisher) is what finds it."""
    before = await verify(keyed.db, KEYED)
    anchor = before.seal_head
    assert anchor is not None and anchor.seq == 6 and anchor.chain_hash.startswith("k1:")
    assert (await verify(keyed.db, KEYED, anchor)).ok

    removed = await truncate_newest(keyed.db)
    assert removed == anchor.position
    assert (await verify(keyed.db, KEYED)).ok  # what the key alone cannot see
    report = await verify(keyed.db, KEYED, anchor)
    assert [(p.position, p.kind) for p in report.problems] == [(anchor.position, "rolled-back")]
    assert "gone" in report.problems[0].detail
