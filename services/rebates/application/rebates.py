"""The rebate of one partner under one program (stream ``rebate-<prg>-<partner>``), as an aggregate.

``REBATE`` describes the stream to the one command path (``libs.runtime.commands``):
a ``Unit`` loads it, appends what was decided and writes the accrual and
settlement documents. Reaction event ids are salted with the stream and its
version, so a repeated source appends nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence

from libs.events.base import DomainEvent
from libs.events.rebates import RebateAccrued, SettlementApproved, SettlementProposed
from libs.runtime.commands import Aggregate, Loaded, Unit
from libs.runtime.ids import new_id
from libs.store.snapshots import SnapshotPolicy
from services.rebates.application import sources, views
from services.rebates.domain import rebate, snapshot
from services.rebates.domain.coop import COOP_EVENTS
from services.rebates.domain.rebate import RebateState

STREAM_TYPE = "rebate"

RebateKey = sources.RebateKey

LoadedRebate = Loaded[RebateKey, RebateState]


def new_settlement_id() -> str:
    return new_id("stl")


def stream_of(key: RebateKey) -> str:
    program_id, partner_id = key
    return f"rebate-{program_id}-{partner_id}"


async def _write_documents(unit: Unit, loaded: LoadedRebate, events: Sequence[DomainEvent],
                           before: RebateState) -> None:
    """The rows of the sources just counted, the accrual document (totals) and the settlements."""
    accrued = [event.source for event in events if isinstance(event, RebateAccrued)]
    await sources.save(unit.conn, loaded.key, before.accruals + 1, accrued)
    await views.write_rebate(unit.conn, loaded.state, loaded.version)


SNAPSHOTS: SnapshotPolicy[RebateState] = SnapshotPolicy(
    snapshot.SHAPE, [RebateAccrued, SettlementProposed, SettlementApproved, *COOP_EVENTS], snapshot.encode,
    snapshot.decode)
"""A rebate's stream gains an event per source its program counts: loads start from a snapshot."""

REBATE: Aggregate[RebateKey, RebateState] = Aggregate(
    stream_type=STREAM_TYPE, stream_id=stream_of, initial=lambda key: RebateState(*key),
    evolve=rebate.evolve, project=_write_documents, snapshots=SNAPSHOTS)


async def load_rebate(unit: Unit, program_id: str, partner_id: str) -> LoadedRebate:
    return await unit.load(REBATE, (program_id, partner_id))


async def append(unit: Unit, loaded: LoadedRebate, new_events: Sequence[DomainEvent]) -> LoadedRebate:
    """Append at the loaded version (a concurrent change raises ``ConcurrencyError``: retry)."""
    state = loaded.state
    return await unit.save(loaded, new_events,
                           salt=f"{state.program_id}:{state.partner_id}:{loaded.version}")
