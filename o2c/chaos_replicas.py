"""Two replicas of every service on PostgreSQL; one replica of each killed under load.

Two supervisors run the six services against one PostgreSQL database (the same
schemas) and one broker, as two replicas of each would on a cluster. Set ``a``
starts first, so its relays hold the relay leases and its consumers are in the
groups; set ``b`` joins and takes the clients' traffic (:mod:`o2c.chaos_load`).
While orders flow, each service of ``a`` gets a SIGKILL in turn and stays dead: the
replicas of ``b`` must take publishing over (the relay lease,
:mod:`libs.messaging.lease`) and the consumer groups must hand them the partitions.
Then :mod:`o2c.chaos_checks` holds the books to the promises of ``o2c chaos``
(nothing lost, nothing doubled, nothing stuck, the books agree, ``verify`` passes),
and :class:`LeaseWatch` shows who published: the holder of every relay lease,
sampled from ``pg_locks`` throughout, never two at once, ``a``'s replica before its
kill and ``b``'s after.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from libs.events.topics import PUBLISHERS
from libs.messaging.broker import free_ports
from libs.messaging.lease import advisory_key
from o2c.chaos import ChaosPlan, Faults, conclude, run_load, settle_and_check
from o2c.chaos_load import Api, Clients, Tally, set_up
from o2c.loop_thread import LoopThread
from o2c.scenario import schema_prefix, supervisor_for
from o2c.supervisor import Supervisor

#: Advisory locks held right now, with the application name of the session holding each
#: (``o2c <schema> <host>:<pid>``, set by ``libs.store.database``).
_HELD_LOCKS = """
    SELECT (l.classid::bigint << 32) | l.objid::bigint AS key, a.application_name
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
"""


def replicas_of(first: Supervisor, data_dir: Path) -> Supervisor:
    """A second replica of each of ``first``'s services: the same database, schemas, broker,
    admin token and audit keys; ports of its own."""
    shared = dict(first.extra_env)
    if first.embedded:  # the short consumer-group timeouts of the embedded broker
        shared["O2C_EMBEDDED"] = "1"
    if first.audit_key_path is not None:
        shared["O2C_AUDIT_KEY_FILE"] = str(first.audit_key_path)
    return Supervisor(data_dir, database_url=first.database_url, kafka=first.bootstrap,
                      services=first.services, admin_token=first.admin_token,
                      ports=dict(zip(first.services, free_ports(len(first.services)), strict=True)),
                      create_topics=False, extra_env=shared)


def _pid_of(application_name: str) -> int | None:
    try:
        return int(application_name.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None


@dataclass
class LeaseWatch:
    """Samples the holder (a process id) of every service's relay lease from ``pg_locks``."""

    database_url: str
    schemas: Mapping[str, str]  # service -> its schema
    samples: list[tuple[float, dict[str, list[int | None]]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._services = {advisory_key(schema, f"relay:{service}"): service
                          for service, schema in self.schemas.items()}
        self._loop = LoopThread("lease-watch")
        self._conn: asyncpg.Connection | None = None

    def sample(self, at_s: float) -> None:
        self.samples.append((at_s, self._loop.run(self._holders())))

    async def _holders(self) -> dict[str, list[int | None]]:
        if self._conn is None:
            self._conn = await asyncpg.connect(self.database_url)
        held: dict[str, list[int | None]] = {service: [] for service in self.schemas}
        for row in await self._conn.fetch(_HELD_LOCKS):
            if (service := self._services.get(row["key"])) is not None:
                held[service].append(_pid_of(row["application_name"] or ""))
        return held

    def history(self) -> dict[str, list[dict[str, Any]]]:
        """Per service, each change of holder: ``{at_s, holders}``."""
        changes: dict[str, list[dict[str, Any]]] = {service: [] for service in self.schemas}
        for at, held in self.samples:
            for service, holders in held.items():
                if not changes[service] or changes[service][-1]["holders"] != holders:
                    changes[service].append({"at_s": at, "holders": holders})
        return changes

    def check(self, first: Mapping[str, int], second: Mapping[str, int],
              killed_at: Mapping[str, float]) -> list[str]:
        """Findings: two holders at once; a holder that is not a replica of the service; no
        hand-over from ``first``'s replica (killed at ``killed_at``) to ``second``'s."""
        findings = []
        for service, changes in self.history().items():
            known = {first.get(service), second.get(service)}
            for change in changes:
                if len(change["holders"]) > 1:
                    findings.append(f"{service}: two relays held the lease at {change['at_s']}s: "
                                    f"{change['holders']}")
                if not set(change["holders"]) <= known:
                    findings.append(f"{service}: lease held by {change['holders']} at "
                                    f"{change['at_s']}s, not a replica of it ({known})")
            held = [change["holders"][0] for change in changes if change["holders"]]
            before = [c["holders"] for c in changes if c["at_s"] < killed_at.get(service, 0)]
            if not before or before[-1] != [first.get(service)]:
                findings.append(f"{service}: the first replica did not publish before its kill "
                                f"({changes})")
            if not held or held[-1] != second.get(service):
                findings.append(f"{service}: the second replica did not take the lease over "
                                f"({changes})")
        return findings

    def close(self) -> None:
        if self._conn is not None:
            self._loop.run(self._conn.close())
        self._loop.close()


@dataclass
class WatchedFaults(Faults):
    """:class:`~o2c.chaos.Faults` that also sample the relay leases at every tick."""

    watch: LeaseWatch | None = None

    def tend(self) -> list[str]:
        if self.watch is not None:
            self.watch.sample(round(time.monotonic() - self.zero, 1))
        return super().tend()


def run_replicas(plan: ChaosPlan, data_dir: Path, database_url: str, *, label: str = "replicas",
                 report: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Run two replicas of every service under load, kill one of each, check; the summary
    (``ok`` and the evidence). The schemas are named ``<label><random>_<service>``."""
    summary: dict[str, Any] = {"plan": asdict(plan), "database": "postgres"}
    first = second = None
    clients: Clients | None = None
    watch: LeaseWatch | None = None
    try:
        started = time.monotonic()
        first = supervisor_for(data_dir / "a", database_url, label)
        first.start()
        second = replicas_of(first, data_dir / "b")
        second.start()
        prefix = schema_prefix(first)
        summary["schema_prefix"] = prefix
        watch = LeaseWatch(database_url, {name: f"{prefix}{name}" for name in first.services
                                          if name in PUBLISHERS})  # the services with a relay
        first_pids, second_pids = first.pids(), second.pids()
        tally = Tally()
        admin = Api(second.urls(), second.admin_token, tally)
        world = set_up(admin, plan.partners, until=time.monotonic() + 120)
        summary["timings_s"] = {"start_and_set_up": round(time.monotonic() - started, 1)}
        faults = WatchedFaults(second, None, plan, replicas=first, report=report, watch=watch)
        clients = Clients(second.urls(), world, tally, seed=plan.seed, pause_s=plan.order_pause_s,
                          answer_within_s=plan.answer_within_s)
        events: list[str] = []
        summary["supervisor"] = events
        run_load(plan, faults, clients, events, summary)
        summary["checks"] = settle_and_check(plan, faults, clients, admin, world, events, summary)
        killed_at = {entry["killed"]: entry["at_s"] for entry in faults.log if "pid" in entry}
        found = watch.check(first_pids, second_pids, killed_at)
        summary["checks"]["relay_leases"] = {"count": len(found), "examples": found[:10]}
        summary["relay_leases"] = watch.history()
        summary["pids"] = {"a": first_pids, "b": second_pids}
        summary["status"] = {"a": first.status(), "b": second.status()}
        conclude(summary, tally, clients, faults)
        admin.close()
    finally:
        if clients is not None:
            clients.stop()
        for supervisor in (second, first):
            if supervisor is not None:
                supervisor.stop()
        if watch is not None:
            watch.close()
    return summary
