"""What an attacker with write access to a store's database (but not the audit key) can do:
append an event at a stream's head straight into the table, linked with the public formula."""

from __future__ import annotations

import uuid
from dataclasses import replace

from libs.events.base import DomainEvent, format_timestamp, utc_now
from libs.events.chain import UNKEYED, Chain
from libs.events.codec import canonical_json
from libs.events.envelope import Envelope
from libs.store.database import Database
from libs.store.schema import events


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
