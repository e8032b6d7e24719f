"""``o2c replay --service delivery``: shipments and returns rebuilt from the store equal the live ones."""

from __future__ import annotations

from libs.events import default_registry
from libs.events.base import utc_now
from services.delivery.application.rebuild import rebuild_read_models
from services.delivery.application.views import RETURN, SHIPMENT
from tests.delivery.support import WAREHOUSE, FakePublisher, dispatch, shipped_order
from tests.delivery.test_api_returns import ask, receive
from tests.read_model_support import documents_of
from tests.service_support import ADMIN, RunningService


async def test_rebuilding_from_the_store_gives_the_documents_the_commands_wrote(
    svc: RunningService, orders: FakePublisher
) -> None:
    svc.ctx.clock = utc_now  # the service's clock, as in production: a return's day is its event's day
    shipment = await shipped_order(svc, orders, "o1", {"A": 5, "B": 2})
    assert (await dispatch(svc, shipment["id"], {"A": 5})).status_code == 200
    asked = await svc.client.post("/v1/returns", headers=ADMIN, json={
        "order_id": "o1", "kind": "refund", "reason": "broken", "lines": [{"sku": "A", "qty": 1}]})
    assert asked.status_code == 201, asked.text
    for kind, outcome in (("refund", {"restock": 1}), ("exchange", {"scrap": 1}),
                          ("repair", {"repaired": 1})):
        return_id = (await ask(svc, "o1", {"A": 1}, kind=kind)).json()["id"]
        assert (await receive(svc, return_id, {"A": 1})).status_code == 200
        inspected = await svc.client.post(f"/v1/returns/{return_id}/inspect", headers=WAREHOUSE,
                                          json={"lines": [{"sku": "A", **outcome}]})
        assert inspected.status_code == 200, inspected.text
        for shipment_id in inspected.json()["shipment_ids"]:  # the replacement, the repaired unit
            assert (await dispatch(svc, shipment_id, {"A": 1})).status_code == 200
    cancelled = await shipped_order(svc, orders, "o2", {"C": 1})
    await orders.cancel("o2")
    live = await documents_of(svc.ctx.db, (SHIPMENT, RETURN))
    assert sorted(row[3] for row in live if row[0] == RETURN) == [
        "inspected", "repaired_shipped", "replacement_shipped", "requested"]
    assert {row[0] for row in live} == {SHIPMENT, RETURN}
    assert {row[1]: row[3] for row in live}[cancelled["id"]] == "cancelled"

    await rebuild_read_models(svc.ctx.db, default_registry())

    assert await documents_of(svc.ctx.db, (SHIPMENT, RETURN)) == live
