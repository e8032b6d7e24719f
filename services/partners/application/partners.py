"""Partner commands: load the partner, decide, append at the loaded version, write the document.

Each is a ``Unit`` of the one command path (``libs.runtime.commands``): ``PARTNER``
describes the stream, and each command answers the partner as the API shows it,
read back from the document it just wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from libs.events import partners as pt
from libs.events.base import DomainEvent
from libs.runtime.commands import Aggregate, Loaded, Unit
from libs.runtime.ids import new_id
from libs.store.snapshots import SnapshotPolicy
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


def stream_of(partner_id: str) -> str:
    return f"partner-{partner_id}"


def new_partner_id() -> str:
    return new_id("ptn")


def new_agreement_id() -> str:
    return new_id("agr")


async def _write_document(unit: Unit, loaded: Loaded[str, Partner], events: Sequence[DomainEvent],
                          before: Partner) -> None:
    await save_partner(unit.conn, loaded.state, loaded.version)


SNAPSHOTS: SnapshotPolicy[Partner] = SnapshotPolicy(snapshot.SHAPE, pt.EVENTS, snapshot.encode,
                                                    snapshot.decode)
"""A partner's stream lives as long as the partner: loads start from a snapshot."""

PARTNER: Aggregate[str, Partner] = Aggregate(
    stream_type=STREAM_TYPE, stream_id=stream_of, initial=lambda partner_id: Partner(), evolve=evolve,
    project=_write_document, snapshots=SNAPSHOTS)


async def _change(unit: Unit, partner_id: str, decide: Callable[[Partner], list[DomainEvent]]
                  ) -> dict[str, Any]:
    await unit.change(PARTNER, partner_id, decide)
    view = await partner_view(unit.conn, partner_id)
    assert view is not None  # decide refused unknown partners
    return view


async def register_partner(unit: Unit, command: RegisterPartner) -> dict[str, Any]:
    """Register a partner (``applied``); a legal id already registered answers 409."""
    conn = unit.conn
    parent_known = command.parent_id is not None and await partner_exists(conn, command.parent_id)
    # The claim is the uniqueness check, atomic under concurrency; a refusal below rolls it back.
    claimed = await claim_legal_id(conn, command.legal_id, command.partner_id)
    events = decide_register(Partner(), command, legal_id_taken=not claimed,
                             parent_exists=parent_known)
    await unit.save(Loaded(PARTNER, command.partner_id, Partner(), 0), events)
    view = await partner_view(conn, command.partner_id)
    assert view is not None
    return view


async def sign_agreement(unit: Unit, partner_id: str, command: SignAgreement) -> dict[str, Any]:
    return await _change(unit, partner_id, lambda s: decide_sign(s, partner_id, command))


async def suspend_partner(unit: Unit, partner_id: str, reason: str) -> dict[str, Any]:
    return await _change(unit, partner_id, lambda s: decide_suspend(s, partner_id, reason))


async def reinstate_partner(unit: Unit, partner_id: str) -> dict[str, Any]:
    return await _change(unit, partner_id, lambda s: decide_reinstate(s, partner_id))


async def terminate_partner(unit: Unit, partner_id: str, reason: str) -> dict[str, Any]:
    return await _change(unit, partner_id, lambda s: decide_terminate(s, partner_id, reason))


async def change_partner(unit: Unit, partner_id: str, command: ChangePartner) -> dict[str, Any]:
    """A parent change reads the new parent (it must exist and not be the partner's sub-dealer)."""
    parent = None
    if command.parent is not None and command.parent.parent_id is not None:
        parent = (await unit.load(PARTNER, command.parent.parent_id)).state
    today = unit.today()
    return await _change(unit, partner_id,
                         lambda s: decide_change(s, partner_id, command, today=today, parent=parent))


async def end_trial_if_due(unit: Unit, partner_id: str, today: date) -> bool:
    """End the partner's running trial when its end date is before ``today``; True if it ended."""
    loaded = await unit.load(PARTNER, partner_id)
    events = decide_end_trial(loaded.state, today)
    await unit.save(loaded, events)
    return bool(events)
