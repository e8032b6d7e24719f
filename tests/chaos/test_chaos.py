"""Fault injection, bounded: the real system under load while every process is killed in turn.

Runs ``o2c chaos`` (:func:`o2c.chaos.run_chaos`) briefly on SQLite files and on a
private PostgreSQL server (which is killed too). The load places orders with
Idempotency-Key retries, dispatches and pays; every service, the broker and the
database server get a SIGKILL. Afterwards nothing acknowledged may be lost, nothing
doubled, nothing stuck, the books must agree across services and ``verify`` must pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from o2c.chaos import BROKER, DATABASE, ChaosPlan, run_chaos
from o2c.pgserver import find_bin_dir
from o2c.supervisor import SERVICES
from tests.conftest import integration_unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

#: Short enough for ``make test`` (about a minute and a half per database), long enough
#: that every victim is killed once while orders flow.
SHORT = ChaosPlan(load_s=24.0, db_outage_s=2.0, partners=3, order_pause_s=0.3, settle_s=60.0,
                  agree_s=30.0, answer_within_s=20.0)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_nothing_lost_doubled_or_stuck_when_every_process_is_killed(backend: str, tmp_path: Path) -> None:
    if backend == "postgres" and find_bin_dir() is None:
        integration_unavailable("no PostgreSQL binaries for a private server (set O2C_PG_BIN)")
    summary = run_chaos(SHORT, tmp_path / "data", private_postgres=backend == "postgres")
    evidence = json.dumps(summary, indent=1, default=str)

    print(evidence)  # the whole summary, for the record (pytest -rA shows it)
    killed = {fault["killed"] for fault in summary["faults"]
              if "pid" in fault or fault.get("killed") == DATABASE}
    victims = {*SERVICES, BROKER, *([DATABASE] if backend == "postgres" else [])}
    assert killed == victims, f"not every process was killed: {killed}\n{evidence}"
    assert all(child["state"] == "running" and child["restarts"] >= 1
               for child in summary["status"].values()), evidence
    assert summary["load"]["acknowledged_orders"] >= 20, evidence
    assert not summary["load"]["client_errors"], evidence

    failed = {name: check for name, check in summary["checks"].items() if check["count"]}
    assert summary["ok"] and not failed, evidence
