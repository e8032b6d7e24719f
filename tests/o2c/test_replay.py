"""``o2c replay``: rebuilds every service's read models (or the named ones), shows progress and the rate."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson
from typer.testing import CliRunner

from libs.events import orders
from libs.runtime.settings import RuntimeSettings
from o2c.cli import app as cli
from services.projections.application import documents as d
from tests.projections.support import placed, projections, registered

SERVICES = {"partners", "orders", "credit", "delivery", "rebates", "projections"}


async def test_replay_rebuilds_with_a_progress_bar_and_answers_the_rate(tmp_path: Path) -> None:
    db = RuntimeSettings(data_dir=tmp_path).database("projections")
    try:
        async with projections(db) as feed:
            await feed.emit("partner-p1", [registered("p1")])
            await feed.emit("order-o1", [placed("o1", "p1", [("A", 2, 500)]),
                                         orders.OrderConfirmed(order_id="o1")])
            async with db.read() as conn:
                before = await d.all_of(conn, d.ORDER)
    finally:
        await db.dispose()
    runner = CliRunner()

    one = await asyncio.to_thread(runner.invoke, cli, ["replay", "--data-dir", str(tmp_path),
                                                       "--service", "projections"])
    assert one.exit_code == 0, one.output
    answer = orjson.loads(one.stdout)
    assert answer["replayed_events"] == 3 and set(answer["services"]) == {"projections"}
    assert answer["services"]["projections"]["events"] == 3
    assert answer["services"]["projections"]["events_per_s"] > 0
    assert "projections" in one.stderr and "3/3" in one.stderr and "events/s" in one.stderr
    db = RuntimeSettings(data_dir=tmp_path).database("projections")
    try:
        async with db.read() as conn:
            assert await d.all_of(conn, d.ORDER) == before
    finally:
        await db.dispose()

    every = await asyncio.to_thread(runner.invoke, cli, ["replay", "--data-dir", str(tmp_path)])
    assert every.exit_code == 0, every.output
    # Without --service: every service with a store here (only projections'); none is created.
    assert set(orjson.loads(every.stdout)["services"]) == {"projections"}
    assert orjson.loads(every.stdout)["replayed_events"] == 3
    assert sorted(os.listdir(tmp_path)) == ["projections.db"]


def test_an_unknown_service_is_refused() -> None:
    refused = CliRunner().invoke(cli, ["replay", "--service", "billing"])
    assert refused.exit_code == 2 and "no such service: billing" in refused.output
