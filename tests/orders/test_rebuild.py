"""``o2c replay --service orders``: the order documents rebuilt from the store equal the live ones."""

from __future__ import annotations

from libs.events import default_registry
from libs.events.delivery import StockAllocated
from libs.events.values import SkuQty
from services.orders.application.order_records import ORDER
from services.orders.application.rebuild import rebuild_read_models
from tests.orders.support import Publisher, add_product, place
from tests.read_model_support import documents_of
from tests.service_support import ADMIN, RunningService


async def test_rebuilding_from_the_store_gives_the_documents_the_commands_wrote(
    svc: RunningService, publisher: Publisher
) -> None:
    await publisher.partner("p1")
    await publisher.partner("p2")
    await add_product(svc, "P-1", 1000)
    p1, p2 = await publisher.key("partner", "p1"), await publisher.key("partner", "p2")
    first = await place(svc, p1, ("P-1", 1))
    second = await place(svc, p2, ("P-1", 2))
    await publisher.emit("allocation-1", StockAllocated(order_id=first["id"],
                                                        lines=[SkuQty(sku="P-1", qty=1)]))
    cancelled = await svc.client.post(f"/v1/orders/{second['id']}/cancel", json={"reason": "x"},
                                      headers=ADMIN)
    assert cancelled.status_code == 200
    live = await documents_of(svc.ctx.db, (ORDER,))
    assert sorted(row[3] for row in live) == ["cancelled", "confirmed"]

    folded = await rebuild_read_models(svc.ctx.db, default_registry())

    assert folded == sum([len(await svc.ctx.store.load(f"order-{o['id']}")) for o in (first, second)])
    assert await documents_of(svc.ctx.db, (ORDER,)) == live
