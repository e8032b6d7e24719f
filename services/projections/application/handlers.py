"""Reactions: projections archives every published event and folds it into its read models.

The consumer calls a handler only for the types in its table, so the table
names every type of every publisher. ``KeyIssued``/``KeyRevoked`` also keep
the service's local copy of the API keys (``libs.runtime.auth``): the table
here replaces the runtime's key handlers for those two types, so it calls them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from libs.events.base import DomainEvent
from libs.events.envelope import Envelope
from libs.messaging.consumer import Delivery, Handler
from libs.messaging.work import BatchWork
from libs.runtime import documents
from libs.runtime.auth import key_handlers
from services.projections.application import archive
from services.projections.application.projectors import keys_of, project
from services.projections.application.webhooks import DeliveryOutbox
from services.projections.domain.publishers import EVENT_TYPES


async def when_any_event_archive_and_project(delivery: Delivery) -> None:
    """Archive the envelope as published; fold it into the read models the first time only,
    and queue the pushes to the partner's webhooks it calls for (in the same transaction).

    The events of one consumer batch are archived in one statement by its first handler
    (``archive.newly_archived``), and fold into one unit of work: the documents the new
    ones change are created (blank) and read in two statements when the first of them is
    folded, and all are written in one upsert before the batch commits."""
    if not await archive.newly_archived(delivery.conn, delivery.envelope, delivery.work):
        return
    if delivery.work is None:
        async with documents.batch(delivery.conn) as docs:
            partner_id = await project(docs, delivery.envelope, delivery.event)
        outbox = DeliveryOutbox(delivery.conn)
        outbox.add(delivery.envelope, delivery.event, partner_id)
        await outbox.flush()
        return
    work = delivery.work
    first = documents.Documents not in work
    docs = work.shared(documents.Documents, lambda: documents.Documents(delivery.conn),
                       flush=documents.Documents.flush)
    if first:
        await docs.load(keys_of(_decoded(work, await archive.archived_new(delivery.conn, work))))
    partner_id = await project(docs, delivery.envelope, delivery.event)
    work.shared(DeliveryOutbox, lambda: DeliveryOutbox(delivery.conn), flush=DeliveryOutbox.flush
                ).add(delivery.envelope, delivery.event, partner_id)


def _decoded(work: BatchWork, envelopes: Sequence[Envelope]) -> list[DomainEvent]:
    """The events of ``envelopes`` as the batch decoded them (one that failed to decode is left
    out: its handler fails on it and the batch rolls back)."""
    return [event for envelope in envelopes if (event := work.decoded(envelope.event_id)) is not None]


def _keeping_the_key(keep_key: Handler) -> Handler:
    async def when_key_event_keep_key_and_archive(delivery: Delivery) -> None:
        await keep_key(delivery)
        await when_any_event_archive_and_project(delivery)

    return when_key_event_keep_key_and_archive


def handlers() -> Mapping[str, Handler]:
    """Event type -> reaction, for every type of every publisher."""
    table: dict[str, Handler] = dict.fromkeys(EVENT_TYPES, when_any_event_archive_and_project)
    for event_type, keep_key in key_handlers().items():
        table[event_type] = _keeping_the_key(keep_key)
    return table
