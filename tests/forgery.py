"""What an attacker with write access to a store's database (but not the audit key) can do:
append an event at a stream's head straight into the table, linked with the public formula,
or cut the newest events off with their seals."""

from __future__ import annotations

import uuid
from dataclasses import replace

from sqlalchemy import delete, func, select, update

from libs.events.base import DomainEvent, format_timestamp, utc_now
from libs.events.chain import UNKEYED, Chain
from libs.events.codec import canonical_json
from libs.events.envelope import Envelope
from libs.messaging.kafka import ensure_topics
from libs.messaging.relay import Relay
from libs.store.database import Database
from libs.store.schema import event_seals, events, relay_state
from libs.store.store import EventStore
from tests.conftest import wait_until


async def forge_head(db: Database, head: Envelope, event: DomainEvent, *,
                     chain: Chain = UNKEYED, actor: str = "forger") -> Envelope:
    """Insert ``event`` as the version after ``head``, linked onto it by ``chain``'s formula."""
    forged = Envelope(uuid.uuid4(), event.TYPE, event.VERSION, head.stream_id, head.stream_type,
                      head.stream_version + 1, format_timestamp(utc_now()), uuid.uuid4(), None,
                      actor, canonical_json(event.payload()).decode("utf-8"))
    link = forged.chained_hash(head.stream_hash or "", chain)
    async with db.transaction() as conn:
        position = (await conn.execute(events.insert().returning(events.c.position), {
            "event_id": forged.event_id, "stream_id": forged.stream_id,
            "stream_type": forged.stream_type, "version": forged.stream_version,
            "event_type": forged.event_type, "schema_version": forged.schema_version,
            "occurred_at": forged.occurred_at, "correlation_id": forged.correlation_id,
            "causation_id": None, "actor": actor, "data": forged.data, "stream_hash": link,
        })).scalar_one()
    return replace(forged, position=int(position), stream_hash=link)


async def truncate_newest(db: Database) -> int:
    """Delete the newest sealed event and its seal, and set the relay's seal head back to the
    seal before: every link left is valid, keyed or not. Answers the removed position."""
    async with db.transaction() as conn:
        seq, position = (await conn.execute(
            select(event_seals.c.seq, event_seals.c.position)
            .order_by(event_seals.c.seq.desc()).limit(1))).one()
        before = (await conn.execute(
            select(event_seals.c.chain_hash, event_seals.c.position, events.c.tx_id)
            .join(events, events.c.position == event_seals.c.position)
            .where(event_seals.c.seq == seq - 1))).one()
        await conn.execute(delete(event_seals).where(event_seals.c.seq == seq))
        await conn.execute(delete(events).where(events.c.position == position))
        await conn.execute(update(relay_state).values(
            sealed_seq=seq - 1, sealed_hash=before[0], sealed_position=before[1],
            sealed_tx=before[2]))
    return int(position)


async def seal_everything(store: EventStore, broker: str) -> None:
    """Publish and seal every stored event (on PostgreSQL the relay waits for the commit
    horizon, which a parallel suite's transaction can hold back for a moment)."""
    topic = f"test.sealed.{uuid.uuid4().hex[:10]}"
    await ensure_topics(broker, [topic])
    relay = Relay(store, topic=topic, kafka=broker)

    async def everything_sealed() -> bool:
        await relay.publish_batch()
        async with store.db.read() as conn:
            stored = (await conn.execute(select(func.count()).select_from(events))).scalar_one()
            sealed = (await conn.execute(select(func.count()).select_from(event_seals))).scalar_one()
        return bool(stored == sealed)

    try:
        await wait_until(everything_sealed, what="the relay to seal every event")
    finally:
        await relay.stop()
