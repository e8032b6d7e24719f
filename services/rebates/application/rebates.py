"""Loading and recording the rebate of one partner under one program (stream ``rebate-<prg>-<partner>``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent, EventMetadata
from libs.runtime.aggregate import load
from libs.runtime.host import ServiceContext
from services.rebates.application import views
from services.rebates.domain import rebate
from services.rebates.domain.rebate import RebateState

STREAM_TYPE = "rebate"

EventIds = Callable[[int, str], Sequence[uuid.UUID] | None]
"""``(count, salt) -> ids``: deterministic ids in reactions, ``None`` (fresh ids) in commands."""


def fresh_ids(count: int, salt: str) -> None:
    return None


def stream_of(program_id: str, partner_id: str) -> str:
    return f"rebate-{program_id}-{partner_id}"


@dataclass
class Loaded:
    state: RebateState
    version: int


async def load_rebate(conn: AsyncConnection, ctx: ServiceContext, program_id: str, partner_id: str) -> Loaded:
    state, version = await load(conn, ctx.store, ctx.registry, stream_of(program_id, partner_id),
                                RebateState(program_id, partner_id), rebate.evolve)
    return Loaded(state, version)


async def append(
    conn: AsyncConnection, ctx: ServiceContext, loaded: Loaded, new_events: Sequence[DomainEvent],
    meta: EventMetadata, event_ids: EventIds = fresh_ids,
) -> Loaded:
    """Append at the loaded version (a concurrent change raises ``ConcurrencyError``: retry)."""
    if not new_events:
        return loaded
    state = loaded.state
    ids = event_ids(len(new_events), f"{state.program_id}:{state.partner_id}:{loaded.version}")
    await ctx.store.append(stream_of(state.program_id, state.partner_id), STREAM_TYPE, loaded.version,
                           new_events, meta, conn=conn, event_ids=ids)
    for event in new_events:
        state = rebate.evolve(state, event)
    return Loaded(state, loaded.version + len(new_events))


async def write(conn: AsyncConnection, loaded: Loaded) -> None:
    await views.write_rebate(conn, loaded.state, loaded.version)
