"""The documents clients read (``shipment``, ``return``), projected from delivery's events.

Each projection is a pure function of the previous document and one event, so
replaying a stream rebuilds the document.
"""

from __future__ import annotations

from typing import Any

from libs.events.base import DomainEvent
from libs.events.delivery import (
    ReturnGoodsDispatched,
    ReturnInspected,
    ReturnReceived,
    ReturnRequested,
    ShipmentCreated,
    ShipmentDelivered,
    ShipmentDispatched,
)
from services.delivery.domain.quantities import as_lines, from_json, plus, tally
from services.delivery.domain.returns import INSPECTED, RECEIVED, REQUESTED, SENT_BACK
from services.delivery.domain.shipment import CANCELLED, DELIVERED, DISPATCHED, PARTIAL, PENDING

SHIPMENT = "shipment"
RETURN = "return"

Doc = dict[str, Any]


def _lines(lines: Any) -> list[dict[str, Any]]:
    return [line.model_dump() for line in lines]


def project_shipment(doc: Doc | None, event: DomainEvent) -> Doc:
    if isinstance(event, ShipmentCreated):
        return {"id": event.shipment_id, "order_id": event.order_id,
                "partner_id": event.partner_id, "purpose": event.purpose, "return_id": event.return_id,
                "status": PENDING, "lines": _lines(event.lines),
                "dispatched": [], "remaining": _lines(event.lines), "complete": False,
                "dispatches": [], "delivered_at": None, "signed_by": None}
    if doc is None:
        raise LookupError(f"shipment document of {event.TYPE} missing: it starts with ShipmentCreated")
    doc = dict(doc)
    if isinstance(event, ShipmentDispatched):
        payload = event.payload()
        shipped = plus(from_json(doc["dispatched"]), tally(event.lines))
        doc.update(
            dispatched=_lines(as_lines(shipped)), remaining=_lines(event.remaining),
            complete=event.complete, status=DISPATCHED if event.complete else PARTIAL,
            dispatches=[*doc["dispatches"], {
                key: payload[key] for key in
                ("dispatch_id", "lines", "carrier", "tracking_no", "dispatched_on", "complete")}],
        )
    elif isinstance(event, ShipmentDelivered):
        doc.update(status=DELIVERED, delivered_at=event.payload()["delivered_at"],
                   signed_by=event.signed_by)
    return doc


def cancel_shipment(doc: Doc) -> Doc:
    """An order cancelled or rejected before it fully shipped: nothing more ships."""
    if doc["status"] in (PENDING, PARTIAL):
        return {**doc, "status": CANCELLED}
    return doc


def project_return(doc: Doc | None, event: DomainEvent, occurred_on: str) -> Doc:
    if isinstance(event, ReturnRequested):
        return {"id": event.return_id, "order_id": event.order_id, "partner_id": event.partner_id,
                "status": REQUESTED, "kind": event.kind, "reason": event.reason,
                "lines": _lines(event.lines), "received_lines": [], "requested_on": occurred_on,
                "received_on": None, "inspection": None, "inspected_on": None, "shipment_ids": [],
                "goods_dispatched": []}
    if doc is None:
        raise LookupError(f"return document of {event.TYPE} missing: it starts with ReturnRequested")
    if isinstance(event, ReturnReceived):
        return {**doc, "status": RECEIVED, "received_lines": _lines(event.lines),
                "received_on": event.received_on.isoformat()}
    if isinstance(event, ReturnInspected):
        return {**doc, "status": INSPECTED, "inspected_on": event.inspected_on.isoformat(),
                "inspection": {"restocked": _lines(event.restocked), "scrapped": _lines(event.scrapped),
                               "repaired": _lines(event.repaired)},
                "shipment_ids": [*doc.get("shipment_ids", []),
                                 *([event.shipment_id] if event.shipment_id else [])]}
    if isinstance(event, ReturnGoodsDispatched):
        payload = event.payload()
        return {**doc, "status": SENT_BACK[event.kind][1] if event.complete else doc["status"],
                "goods_dispatched": [*doc.get("goods_dispatched", []), {
                    key: payload[key] for key in ("shipment_id", "dispatch_id", "lines", "carrier",
                                                  "tracking_no", "dispatched_on", "complete")}]}
    return doc
