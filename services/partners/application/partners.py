"""Partner commands: load the partner, decide, append at the loaded version, write the document.

Each function runs inside the caller's transaction (``conn``) and answers the
partner as the API shows it, read back from the document it just wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import partners as pt
from libs.events.base import DomainEvent, EventMetadata
from libs.runtime import aggregate
from libs.runtime.host import ServiceContext
from libs.runtime.ids import new_id
from libs.store.snapshots import SnapshotPolicy, save_if_due
from services.partners.application.read_models import (
    claim_legal_id,
    partner_exists,
    partner_view,
    save_partner,
)
from services.partners.domain import snapshot
from services.partners.domain.commands import ChangePartner, RegisterPartner, SignAgreement
from services.partners.domain.partner import (
    Partner,
    decide_change,
    decide_end_trial,
    decide_register,
    decide_reinstate,
    decide_sign,
    decide_suspend,
    decide_terminate,
    evolve,
)

STREAM_TYPE = "partner"
SNAPSHOTS: SnapshotPolicy[Partner] = SnapshotPolicy(snapshot.SHAPE, pt.EVENTS, snapshot.encode,
                                                    snapshot.decode)
"""A partner's stream lives as long as the partner: loads start from a snapshot."""


def stream_of(partner_id: str) -> str:
    return f"partner-{partner_id}"


def new_partner_id() -> str:
    return new_id("ptn")


def new_agreement_id() -> str:
    return new_id("agr")


async def load_partner(conn: AsyncConnection, ctx: ServiceContext, partner_id: str) -> tuple[Partner, int]:
    return await aggregate.load(conn, ctx.store, ctx.registry, stream_of(partner_id), Partner(), evolve,
                                snapshots=SNAPSHOTS)


async def _append_and_save(
    conn: AsyncConnection, ctx: ServiceContext, partner_id: str, state: Partner, version: int,
    events: list[DomainEvent], meta: EventMetadata,
) -> Partner:
    await ctx.store.append(stream_of(partner_id), STREAM_TYPE, version, events, meta, conn=conn)
    for event in events:
        state = evolve(state, event)
    await save_partner(conn, state, version + len(events))
    await save_if_due(conn, stream_of(partner_id), state, version + len(events), SNAPSHOTS)
    return state


async def _change(
    conn: AsyncConnection, ctx: ServiceContext, partner_id: str,
    decide: Callable[[Partner], list[DomainEvent]], meta: EventMetadata,
) -> dict[str, Any]:
    state, version = await load_partner(conn, ctx, partner_id)
    events = decide(state)
    if events:
        await _append_and_save(conn, ctx, partner_id, state, version, events, meta)
    view = await partner_view(conn, partner_id)
    assert view is not None  # decide refused unknown partners
    return view


async def register_partner(
    conn: AsyncConnection, ctx: ServiceContext, command: RegisterPartner, meta: EventMetadata
) -> dict[str, Any]:
    """Register a partner (``applied``); a legal id already registered answers 409."""
    parent_known = command.parent_id is not None and await partner_exists(conn, command.parent_id)
    # The claim is the uniqueness check, atomic under concurrency; a refusal below rolls it back.
    claimed = await claim_legal_id(conn, command.legal_id, command.partner_id)
    events = decide_register(Partner(), command, legal_id_taken=not claimed,
                             parent_exists=parent_known)
    await _append_and_save(conn, ctx, command.partner_id, Partner(), 0, events, meta)
    view = await partner_view(conn, command.partner_id)
    assert view is not None
    return view


async def sign_agreement(
    conn: AsyncConnection, ctx: ServiceContext, partner_id: str, command: SignAgreement,
    meta: EventMetadata,
) -> dict[str, Any]:
    return await _change(conn, ctx, partner_id, lambda s: decide_sign(s, partner_id, command), meta)


async def suspend_partner(
    conn: AsyncConnection, ctx: ServiceContext, partner_id: str, reason: str, meta: EventMetadata
) -> dict[str, Any]:
    return await _change(conn, ctx, partner_id, lambda s: decide_suspend(s, partner_id, reason), meta)


async def reinstate_partner(
    conn: AsyncConnection, ctx: ServiceContext, partner_id: str, meta: EventMetadata
) -> dict[str, Any]:
    return await _change(conn, ctx, partner_id, lambda s: decide_reinstate(s, partner_id), meta)


async def terminate_partner(
    conn: AsyncConnection, ctx: ServiceContext, partner_id: str, reason: str, meta: EventMetadata
) -> dict[str, Any]:
    return await _change(conn, ctx, partner_id, lambda s: decide_terminate(s, partner_id, reason),
                         meta)


async def change_partner(
    conn: AsyncConnection, ctx: ServiceContext, partner_id: str, command: ChangePartner,
    meta: EventMetadata,
) -> dict[str, Any]:
    return await _change(conn, ctx, partner_id, lambda s: decide_change(s, partner_id, command), meta)


async def end_trial_if_due(
    conn: AsyncConnection, ctx: ServiceContext, partner_id: str, today: date, meta: EventMetadata
) -> bool:
    """End the partner's running trial when its end date is before ``today``; True if it ended."""
    state, version = await load_partner(conn, ctx, partner_id)
    events = decide_end_trial(state, today)
    if events:
        await _append_and_save(conn, ctx, partner_id, state, version, events, meta)
    return bool(events)
