"""``o2c replay``: rebuilds every service's read models (or the named ones), shows progress and the rate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from typer.testing import CliRunner

from libs.events import orders
from libs.runtime.settings import RuntimeSettings
from o2c.cli import app as cli
from o2c.replay import rebuilders
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
    assert set(orjson.loads(every.stdout)["services"]) == SERVICES == set(rebuilders())
    assert orjson.loads(every.stdout)["replayed_events"] == 3  # the other services' stores are empty


def test_an_unknown_service_is_refused() -> None:
    refused = CliRunner().invoke(cli, ["replay", "--service", "billing"])
    assert refused.exit_code == 2 and "no such service: billing" in refused.output
