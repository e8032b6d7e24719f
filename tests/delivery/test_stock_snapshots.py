"""A sku's receipts stream loads from a snapshot; deleting snapshots changes no answer (both databases)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from libs.events.delivery import StockReceived
from libs.store.schema import snapshots as snapshots_table
from services.delivery.application.stock import SNAPSHOTS
from services.delivery.domain.stock import (
    StockItem,
    decode_stock_item,
    encode_stock_item,
    evolve_stock_item,
)
from tests.delivery.support import WAREHOUSE, book
from tests.service_support import RunningService


def test_a_stock_item_survives_its_codec_and_folds_on_to_the_same_state() -> None:
    events = [StockReceived(sku="A", qty=n, reference=f"DN-{n % 5}") for n in range(1, 12)]
    whole, at_cut = StockItem(), StockItem()
    for n, event in enumerate(events):
        whole = evolve_stock_item(whole, event)
        at_cut = at_cut if n >= 6 else evolve_stock_item(at_cut, event)
    restored = decode_stock_item(encode_stock_item(at_cut))
    assert restored == at_cut and encode_stock_item(restored) == encode_stock_item(at_cut)
    for event in events[6:]:
        restored = evolve_stock_item(restored, event)
    assert restored == whole and whole.received == sum(range(1, 12))


async def test_deleting_stock_snapshots_changes_no_answer(svc: RunningService, monkeypatch: Any) -> None:
    monkeypatch.setattr(SNAPSHOTS, "every", 2)
    monkeypatch.setattr(SNAPSHOTS, "size", None)
    for n in range(7):
        assert (await book(svc, "SKU-S", 10 + n, reference=f"DN-{n}")).status_code == 201
    async with svc.ctx.db.read() as conn:
        assert (await conn.execute(select(snapshots_table.c.version).where(
            snapshots_table.c.stream_id == "stock-SKU-S"))).scalar() == 7
    before = (await svc.client.get("/v1/stock/SKU-S", headers=WAREHOUSE)).json()

    async with svc.ctx.db.transaction() as conn:
        await conn.execute(delete(snapshots_table))
    SNAPSHOTS.forget()
    assert (await svc.client.get("/v1/stock/SKU-S", headers=WAREHOUSE)).json() == before
    again = await book(svc, "SKU-S", 5, reference="DN-3")  # still known without any snapshot
    assert again.status_code == 409, again.text
    assert (await book(svc, "SKU-S", 5, reference="DN-7")).status_code == 201
