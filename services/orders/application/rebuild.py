"""Rebuild the orders' read models from their own store: ``o2c replay --service orders``.

Each order stream is folded again, with its status history and timestamps taken
from the envelopes as ``order_records`` does on every save, and written with the
same body function as the commands. The catalog and the partner copies are not
rebuilt here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from libs.events.base import DomainEvent
from libs.events.envelope import Envelope
from libs.runtime.documents import Documents
from libs.runtime.rebuild import StreamReadModels, rebuilder
from services.orders.application.order_records import ORDER, order_document
from services.orders.domain.order import Order, evolve


@dataclass(frozen=True)
class _Timeline:
    """An order with what only its envelopes know: when it was placed, and its status history."""

    order: Order = field(default_factory=Order)
    placed_at: str = ""
    updated_at: str = ""
    history: tuple[dict[str, str], ...] = ()

    def folded(self, envelope: Envelope, event: DomainEvent) -> _Timeline:
        order, history = evolve(self.order, event), self.history
        if order.status != self.order.status:
            history = (*history, {"status": order.status, "at": envelope.occurred_at,
                                  "event": envelope.event_type})
        return replace(self, order=order, placed_at=self.placed_at or envelope.occurred_at,
                       updated_at=envelope.occurred_at, history=history)


def _write_order(docs: Documents, timeline: _Timeline, version: int) -> None:
    order = timeline.order
    body = order_document(order, timeline.placed_at, timeline.updated_at, list(timeline.history))
    docs.put(ORDER, order.order_id, body, partner_id=order.partner_id, status=order.status,
             version=version)


MODELS = (StreamReadModels(ORDER, lambda stream_id: _Timeline(),
                           lambda timeline, envelope, event: timeline.folded(envelope, event),
                           _write_order),)


rebuild_read_models = rebuilder((ORDER,), MODELS)
"""Forget the order documents and write them again from the order streams; events folded."""
