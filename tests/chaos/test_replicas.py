"""Two replicas of every service on PostgreSQL: kill one of each under load, lose nothing.

Runs :func:`o2c.chaos_replicas.run_replicas`: two sets of the six services share one
PostgreSQL database and the broker; the clients talk to the second set while every
service of the first gets a SIGKILL in turn (and stays dead). Afterwards every order
reached its end state exactly once (one shipment per order, one invoice per dispatch,
one payment per bank reference, agreeing books, ``verify`` ok), and each relay lease was
held by one replica at a time: the first set's until its kill, then the second's.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import asyncpg
import pytest

from libs.events.topics import PUBLISHERS
from o2c.chaos import ChaosPlan
from o2c.chaos_replicas import run_replicas
from o2c.supervisor import SERVICES
from tests.conftest import PG_URL

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.postgres]

#: Every replica of the first set killed within 12 s of orders (one every 1.7 s); few
#: enough orders that the clients finish their dispatches and payments soon after.
PLAN = ChaosPlan(load_s=12.0, partners=2, order_pause_s=0.6, settle_s=40.0, agree_s=20.0,
                 answer_within_s=20.0)


async def _drop_schemas(prefix: str) -> None:
    conn = await asyncpg.connect(PG_URL)
    try:
        for (name,) in await conn.fetch(
                "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", prefix):
            await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
    finally:
        await conn.close()


def test_a_killed_replica_of_every_service_loses_and_doubles_nothing(tmp_path: Path) -> None:
    label = f"replicas{uuid.uuid4().hex[:6]}"
    try:
        summary = run_replicas(PLAN, tmp_path / "data", PG_URL, label=label)
    finally:
        asyncio.run(_drop_schemas(label))
    evidence = json.dumps(summary, indent=1, default=str)
    print(evidence)

    killed = {fault["killed"] for fault in summary["faults"] if "pid" in fault}
    assert killed == set(SERVICES), evidence
    assert all(child["state"] == "running" and child["restarts"] == 0
               for child in summary["status"]["b"].values()), evidence
    assert summary["load"]["acknowledged_orders"] >= 10, evidence
    assert summary["load"]["dispatched"] and summary["load"]["payments"], evidence
    assert not summary["load"]["client_errors"], evidence
    assert set(summary["relay_leases"]) == set(PUBLISHERS), evidence
    for service, changes in summary["relay_leases"].items():
        holders = [change["holders"] for change in changes if change["holders"]]
        assert holders[0] == [summary["pids"]["a"][service]], (service, changes)
        assert holders[-1] == [summary["pids"]["b"][service]], (service, changes)

    failed = {name: check for name, check in summary["checks"].items() if check["count"]}
    assert summary["ok"] and not failed, evidence
