"""Rebuild the orders' read models from their own store: ``o2c replay --service orders``.

Each order stream is folded again into its ``OrderRecord`` (status history and
timestamps come from the envelopes) and written by the same body function as
the commands. The catalog and the partner copies are not rebuilt here.
"""

from __future__ import annotations

from libs.runtime.documents import Documents
from libs.runtime.rebuild import StreamReadModels, rebuilder
from services.orders.application.order_records import ORDER, OrderRecord, order_document


def _write_order(docs: Documents, record: OrderRecord, version: int) -> None:
    order = record.order
    docs.put(ORDER, order.order_id, order_document(record), partner_id=order.partner_id,
             status=order.status, version=record.version)


MODELS = (StreamReadModels("order", lambda stream_id: OrderRecord(),
                           lambda record, envelope, event: record.folded(envelope, event), _write_order),)


rebuild_read_models = rebuilder((ORDER,), MODELS)
"""Forget the order documents and write them again from the order streams; events folded."""
