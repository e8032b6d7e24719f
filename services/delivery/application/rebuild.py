"""Rebuild delivery's read models from its own store: ``o2c replay --service delivery``.

Shipment and return documents are folded again from their streams by the same
projections as the commands (``views``). A shipment whose order was cancelled
or rejected (known from the order copies, which are kept: they come from
orders' events) is cancelled as the reaction cancels it. Stock levels,
allocations and order copies are not rebuilt here.
"""

from __future__ import annotations

from typing import Any

from libs.runtime.documents import Documents
from libs.runtime.rebuild import StreamReadModels, rebuilder
from services.delivery.application.order_copies import get_order
from services.delivery.application.views import (
    RETURN,
    SHIPMENT,
    cancel_shipment,
    project_return,
    project_shipment,
)

Doc = dict[str, Any] | None


async def _write_shipment(docs: Documents, doc: Doc, version: int) -> None:
    if doc is None:
        return
    order = await get_order(docs.conn, doc["order_id"])
    if order is not None and order["status"] in ("cancelled", "rejected"):
        doc = cancel_shipment(doc)
    docs.put(SHIPMENT, doc["id"], doc, partner_id=doc["partner_id"], status=doc["status"],
             ref_id=doc["order_id"])


def _write_return(docs: Documents, doc: Doc, version: int) -> None:
    if doc is not None:
        docs.put(RETURN, doc["id"], doc, partner_id=doc["partner_id"], status=doc["status"],
                 ref_id=doc["order_id"])


MODELS = (
    StreamReadModels(SHIPMENT, lambda stream_id: None,
                     lambda doc, envelope, event: project_shipment(doc, event), _write_shipment),
    StreamReadModels(RETURN, lambda stream_id: None,
                     lambda doc, envelope, event: project_return(doc, event, envelope.occurred_at[:10]),
                     _write_return),
)


rebuild_read_models = rebuilder((SHIPMENT, RETURN), MODELS)
"""Forget the shipment and return documents, write them again from their streams; events folded."""
