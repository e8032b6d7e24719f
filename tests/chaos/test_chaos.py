"""Fault injection, bounded: the real system under load while every process is killed in turn.

Runs ``o2c chaos`` (:func:`o2c.chaos.run_chaos`) briefly on SQLite files and on a
private PostgreSQL server (which is killed too). The load places orders with
Idempotency-Key retries, dispatches and pays; every service, the broker and the
database server get a SIGKILL. Afterwards nothing acknowledged may be lost, nothing
doubled, nothing stuck, the books must agree across services and ``verify`` must pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class Diagnosis:
    """A failing check explained by a fix on another branch of issue 6, recognised by the
    summary: a log line in some child's log and, for work left undone, how the settling went."""

    owner: str
    finding: str
    signature: str  # a LOG_SIGNALS name ...
    seen_in: tuple[str, ...]  # ... that one of these children's logs must show
    trend: str | None = None  # the summary's settle_trend it needs ("flat": stranded)

    def explains(self, summary: dict[str, Any]) -> bool:
        return (any(self.signature in summary["log_signals"].get(name, {}) for name in self.seen_in)
                and self.trend in (None, summary.get("settle_trend")))


FINDING_1_2 = ("issue 6 findings 1 and 2: after a broker loss an idle relay does not republish "
               "(and a topic may be auto-created with another partition count), so a consumer waits "
               "for a version the topics do not hold and parks the stream")
FINDING_2 = ("issue 6 findings 2 and 6: a relay notices the broker's loss only when its service "
             "writes again, so recovery cascades service by service and outlasts the bound")
PARKED = "consumer parked a stream (gap not healed)"
#: Orders wait for credit's verdict and delivery's dispatches; delivery for orders' approval;
#: credit invoices the dispatches it consumes.
STRANDED = Diagnosis("relay", FINDING_1_2, PARKED, ("orders", "delivery", "credit"), trend="flat")
#: The views (projections' partner 360 and aging, rebates' accruals) fold what they consumed.
STRANDED_VIEWS = Diagnosis("relay", FINDING_1_2, PARKED, ("projections", "rebates"))
LATE = Diagnosis("relay", FINDING_2, "relay noticed broker loss only when producing", SERVICES,
                 trend="converging")
#: Broken promises diagnosed as belonging to fixes on other branches of issue 6. The test
#: is an expected failure only while *every* failing check is explained here; anything
#: else fails it. Remove an entry once its fix is merged.
KNOWN_ELSEWHERE: dict[str, dict[str, tuple[Diagnosis, ...]]] = {
    "sqlite": {"stuck": (STRANDED, LATE), "unsettled": (STRANDED, LATE), "disagree": (STRANDED_VIEWS,)},
    "postgres": {"stuck": (STRANDED, LATE), "unsettled": (STRANDED, LATE), "disagree": (STRANDED_VIEWS,)},
}


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
    known = KNOWN_ELSEWHERE[backend]
    explained = {name: next((d for d in known.get(name, ()) if d.explains(summary)), None)
                 for name in failed}
    if failed and all(explained.values()):
        pytest.xfail("; ".join(f"{name} ({failed[name]['count']}): {d.owner}: {d.finding}"
                               for name, d in explained.items() if d is not None))
    assert summary["ok"] and not failed, evidence
