"""``o2c chaos``: the whole system under load while its processes are killed, then its books checked.

The system runs the way ``o2c up`` runs it (:class:`o2c.supervisor.Supervisor`: the
embedded broker and six service processes) on SQLite files or on PostgreSQL; with
``private_postgres`` the database server is a private one (:mod:`o2c.pgserver`) so it
can be killed too. While distributor, warehouse and finance clients work
(:mod:`o2c.chaos_load`), each victim in turn is killed with SIGKILL: every service,
the broker, and the database server. The supervisor restarts services and the
broker (``check()``, as ``o2c up`` does); the database server is restarted here
after a short outage. Then new orders stop, the clients finish their work, and
:mod:`o2c.chaos_checks` holds the system to its promises. The result is one JSON-able
summary whose ``ok`` is true only when no check found anything.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from o2c import chaos_checks
from o2c.chaos_checks import Books
from o2c.chaos_load import Api, Clients, GaveUp, Tally, World, set_up
from o2c.pgserver import PrivatePostgres
from o2c.scenario import schema_prefix, supervisor_for
from o2c.supervisor import SERVICES, Supervisor

DATABASE = "database"
BROKER = "broker"
_TICK_S = 0.2
#: How long after a database restart a 500 still counts as part of the outage (pools reconnect).
OUTAGE_GRACE_S = 5.0


@dataclass(frozen=True)
class ChaosPlan:
    """How long and how hard (seconds).

    :param load_s: how long orders are placed while victims are killed.
    :param kill_every_s: the pause between two kills; ``None``: each victim once, spread
        evenly over the load.
    :param db_outage_s: how long a killed database server stays down.
    :param settle_s: the bound within which every order must reach its final status
        after the load (the clients keep dispatching and paying meanwhile).
    :param agree_s: the bound within which the books must agree across services.
    :param order_pause_s: each distributor's pause between two orders.
    """

    load_s: float = 30.0
    kill_every_s: float | None = None
    db_outage_s: float = 2.0
    partners: int = 3
    settle_s: float = 60.0
    agree_s: float = 20.0
    answer_within_s: float = 30.0
    order_pause_s: float = 0.3
    seed: int = 0


@dataclass
class Faults:
    """Kills each victim in turn (SIGKILL to its whole process group) and restarts the database.

    ``replicas``: kill the services of this other set of replicas instead (one replica of
    each service, never restarted: ``supervisor``'s replicas must carry on alone).
    """

    supervisor: Supervisor
    database: PrivatePostgres | None
    plan: ChaosPlan
    replicas: Supervisor | None = None
    victims: list[str] = field(init=False)
    zero: float = field(default_factory=time.monotonic)  # ``at_s`` counts from here
    log: list[dict[str, Any]] = field(default_factory=list)
    report: Callable[[str], None] = lambda line: None  # progress, e.g. to stderr
    _next: int = 0
    _db_back_at: float | None = None

    def __post_init__(self) -> None:
        # the broker early (its loss then overlaps the load), the database in the middle
        database = [DATABASE] if self.database else []
        self.victims = ([SERVICES[0], BROKER, *SERVICES[1:3], *database, *SERVICES[3:]]
                        if self.replicas is None else list(self.replicas.services))

    @property
    def every_s(self) -> float:
        return self.plan.kill_every_s or self.plan.load_s / (len(self.victims) + 1)

    def database_outages(self) -> list[tuple[float, float]]:
        """``(killed_at_s, restarted_at_s)`` of each database outage (an open one ends now)."""
        kills = [e["at_s"] for e in self.log if e.get("killed") == DATABASE]
        backs = [e["at_s"] for e in self.log if e.get("restarted") == DATABASE]
        now = round(time.monotonic() - self.zero, 1)
        return [(kill, backs[i] if i < len(backs) else now) for i, kill in enumerate(kills)]

    def kill_next(self) -> None:
        victim = self.victims[self._next % len(self.victims)]
        self._next += 1
        at = round(time.monotonic() - self.zero, 1)
        self.report(f"{at:7.1f}s kill -9 {victim}")
        if victim == DATABASE:
            assert self.database is not None
            self.database.kill()
            self._db_back_at = time.monotonic() + self.plan.db_outage_s
            self.log.append({"at_s": at, "killed": DATABASE})
            return
        pid = (self.replicas or self.supervisor).pids().get(victim)
        if pid is None:  # still down from an earlier fault: nothing to kill
            self.log.append({"at_s": at, "killed": victim, "note": "was not running"})
            return
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.append({"at_s": at, "killed": victim, "pid": pid})

    def tend(self) -> list[str]:
        """Restart what died: the database server when its outage is over, the rest by the supervisor."""
        events: list[str] = []
        if self._db_back_at is not None and time.monotonic() >= self._db_back_at:
            assert self.database is not None
            self.database.start()
            self._db_back_at = None
            self.log.append({"at_s": round(time.monotonic() - self.zero, 1), "restarted": DATABASE})
            events.append("database server restarted (crash recovery)")
        events += self.supervisor.check()
        for line in events:
            self.report(f"{time.monotonic() - self.zero:7.1f}s {line}")
        return events

    def all_up(self) -> bool:
        status = self.supervisor.status()
        return self._db_back_at is None and all(child["state"] == "running" for child in status.values())


def _tend_while(faults: Faults, busy: Callable[[], bool], until: float, events: list[str]) -> bool:
    """Keep restarting the dead while ``busy()``; False if ``until`` passed first."""
    while busy():
        if time.monotonic() > until:
            return False
        events += faults.tend()
        time.sleep(_TICK_S)
    return True


def run_chaos(plan: ChaosPlan, data_dir: Path, *, database_url: str | None = None,
              private_postgres: bool = False,
              report: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Run the system under load and faults, then check it; the summary (``ok`` and the evidence).

    ``report`` gets a line per fault and per restart as they happen.
    """
    database = PrivatePostgres() if private_postgres else None
    summary: dict[str, Any] = {"plan": asdict(plan),
                               "database": "private postgres" if database else
                               ("postgres" if database_url else "sqlite")}
    supervisor: Supervisor | None = None
    clients: Clients | None = None
    try:
        if database is not None:
            database.start()
            database_url = database.url
        started = time.monotonic()
        supervisor = supervisor_for(data_dir, database_url, "chaos")
        summary["schema_prefix"] = schema_prefix(supervisor)
        supervisor.start()
        tally = Tally()
        admin = Api(supervisor.urls(), supervisor.admin_token, tally)
        world = set_up(admin, plan.partners, until=time.monotonic() + 120)
        summary["timings_s"] = {"start_and_set_up": round(time.monotonic() - started, 1)}
        faults = Faults(supervisor, database, plan, report=report)
        clients = Clients(supervisor.urls(), world, tally, seed=plan.seed, pause_s=plan.order_pause_s,
                          answer_within_s=plan.answer_within_s)
        events: list[str] = []
        summary["supervisor"] = events
        report(f"system up on {summary['database']}; load for {plan.load_s:.0f}s, "
               f"a kill every {faults.every_s:.1f}s")
        run_load(plan, faults, clients, events, summary)
        report(f"load over ({len(tally.acknowledged)} orders acknowledged); settling and checking")
        summary["checks"] = settle_and_check(plan, faults, clients, admin, world, events, summary)
        summary["status"] = supervisor.status()
        summary["log_signals"] = _log_signals(supervisor)
        conclude(summary, tally, clients, faults)
        admin.close()
    finally:
        if clients is not None:
            clients.stop()
        if supervisor is not None:
            supervisor.stop()
        if database is not None:
            database.close()
    return summary


def run_load(plan: ChaosPlan, faults: Faults, clients: Clients, events: list[str],
              summary: dict[str, Any]) -> None:
    """Place orders for ``load_s`` while killing victims; then let the requests in flight finish."""
    started = faults.zero = clients.tally.zero = time.monotonic()
    clients.start()
    next_kill = started + faults.every_s
    while time.monotonic() - started < plan.load_s:
        if time.monotonic() >= next_kill:
            faults.kill_next()
            next_kill += faults.every_s
        events += faults.tend()
        time.sleep(_TICK_S)
    clients.placing.clear()
    _tend_while(faults, clients.placing_in_flight, time.monotonic() + plan.answer_within_s + 10, events)
    recovered = _tend_while(faults, lambda: not faults.all_up(), time.monotonic() + 60, events)
    summary["timings_s"]["load"] = round(time.monotonic() - started, 1)
    if not recovered:
        events.append("not every child was running again within 60 s")


def settle_and_check(plan: ChaosPlan, faults: Faults, clients: Clients, admin: Api, world: World,
                      events: list[str], summary: dict[str, Any]) -> dict[str, Any]:
    """Let the clients finish (every order shipped, every invoice paid) within ``settle_s``; check."""
    started = time.monotonic()
    finance = Api(admin.urls, world.staff["finance"], admin.tally)
    progress: list[dict[str, Any]] = summary.setdefault("settle_progress", [])
    try:
        def unsettled() -> bool:
            try:
                books = Books.read(admin, finance, world, time.monotonic() + 10)
            except GaveUp:
                return True
            left = {"at_s": round(time.monotonic() - started, 1),
                    "not_shipped": len(chaos_checks.stuck(books, clients.tally)),
                    "unpaid": len(chaos_checks.invoices_unsettled(books))}
            if not progress or progress[-1]["at_s"] + 5 <= left["at_s"] or not any(
                    (left["not_shipped"], left["unpaid"])):
                progress.append(left)
            return bool(left["not_shipped"] or left["unpaid"])

        _tend_while(faults, unsettled, started + plan.settle_s, events)
        summary["settle_trend"] = settle_trend(progress)
        clients.stop()
        summary["timings_s"]["settle"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        checks = chaos_checks.check_all(admin, finance, world, clients.tally, plan.agree_s)
        summary["timings_s"]["checks"] = round(time.monotonic() - started, 1)
    finally:
        finance.close()
    checks.update(_server_errors(clients.tally, faults))
    refused = [f"{key}: {answer}" for key, answer in clients.tally.refused.items()]
    checks["refused_orders"] = {"count": len(refused), "examples": refused[:10]}
    return checks


def settle_trend(progress: list[dict[str, Any]], window_s: float = 10.0) -> str:
    """``settled``; ``converging`` (work left, but less than ``window_s`` earlier: slow);
    ``flat`` (no progress in the last ``window_s``: stranded)."""
    if not progress:
        return "flat"
    left = [(p["at_s"], p["not_shipped"] + p["unpaid"]) for p in progress]
    at, last = left[-1]
    if last == 0:
        return "settled"
    earlier = [count for when, count in left if when <= at - window_s]
    return "converging" if earlier and earlier[-1] > last else "flat"


def _server_errors(tally: Tally, faults: Faults) -> dict[str, Any]:
    """500s while the database was away (from its kill until ``OUTAGE_GRACE_S`` after its
    restart) apart from the others: an outage must answer 503, anything else never 500."""
    windows = faults.database_outages()
    during = [e for e in tally.answered_500
              if any(start <= e["at_s"] <= end + OUTAGE_GRACE_S for start, end in windows)]
    other = [e for e in tally.answered_500 if e not in during]
    return {"answered_500": {"count": len(other), "examples": [str(e) for e in other[:10]]},
            "answered_500_in_db_outage": {"count": len(during), "examples": [str(e) for e in during[:10]]}}


#: Log lines that explain a failed check: a consumer skipping an early event, a relay
#: republishing after a broker loss, a topic with a foreign partition count, dead letters.
LOG_SIGNALS = {
    "consumer skipped an out-of-order event": "skipped until it comes in order",
    "consumer healed a gap from the topics": "healed from the topics",
    "consumer parked a stream (gap not healed)": "parked: versions",
    "relay republished after broker loss": "republishing from the start",
    "relay noticed broker loss only when producing": "answered offset",
    "topic with another partition count": "partitions (wanted",
    "dead-lettered": "dead-lettered",
    "unhandled error (HTTP 500)": "unhandled error on",
}


def _log_signals(supervisor: Supervisor) -> dict[str, dict[str, Any]]:
    """Per child's log: how often each of :data:`LOG_SIGNALS` appears, with its first lines."""
    found: dict[str, dict[str, Any]] = {}
    for name in [*supervisor.services, BROKER]:
        path = supervisor.broker_log if name == BROKER else supervisor.log_path(name)
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        for signal_name, needle in LOG_SIGNALS.items():
            hits = [line[:240] for line in lines if needle in line]
            if hits:
                found.setdefault(name, {})[signal_name] = {"count": len(hits), "first": hits[:3]}
    return found


def conclude(summary: dict[str, Any], tally: Tally, clients: Clients, faults: Faults) -> None:
    """Add the load and the faults to ``summary``, and ``ok``: no check found anything."""
    summary["load"] = _load_summary(tally, clients)
    summary["faults"] = faults.log
    summary["ok"] = not clients.errors and all(
        check["count"] == 0 for check in summary["checks"].values())


def _load_summary(tally: Tally, clients: Clients) -> dict[str, Any]:
    return {
        "acknowledged_orders": len(tally.acknowledged),
        "unanswered_orders": len(tally.unanswered),
        "refused_orders": dict(list(tally.refused.items())[:10]),
        "dispatched": len(tally.dispatched),
        "payments": len(tally.paid),
        "answers": dict(sorted(tally.statuses.items())),
        "client_errors": clients.errors,
    }
