"""The return aggregate (stream ``return-<id>``), shared by the return commands and by the
dispatch of a return's shipment, which tells the return its goods are on their way."""

from __future__ import annotations

from libs.events.base import EventMetadata
from libs.events.delivery import ShipmentDispatched
from libs.runtime.commands import Aggregate, Unit, folded_document
from libs.store.snapshots import SnapshotPolicy
from services.delivery.application.views import RETURN, project_return
from services.delivery.domain.returns import GoodsReturn, decide_goods_dispatched, evolve_return


def return_stream(return_id: str) -> str:
    return f"return-{return_id}"


RETURN_STREAM: Aggregate[str, GoodsReturn] = Aggregate(
    stream_type=RETURN, stream_id=return_stream, initial=lambda return_id: GoodsReturn(),
    evolve=evolve_return, project=folded_document(
        RETURN, lambda doc, event, unit: project_return(doc, event, unit.today().isoformat()),
        ref="order_id"),
    document=RETURN, snapshots=SnapshotPolicy.in_memory(RETURN))


async def note_goods_dispatched(unit: Unit, dispatched: ShipmentDispatched, meta: EventMetadata) -> None:
    """A return's replacement or repaired goods left: the return records it, in the same transaction."""
    if dispatched.return_id is None:
        return
    loaded = await unit.load(RETURN_STREAM, dispatched.return_id)
    new = decide_goods_dispatched(loaded.state, dispatched)
    if new:
        await unit.save(loaded, new, meta=meta)
