"""``o2c bench api``: ``POST /v1/orders`` through the real orders service, against a baseline.

For each database (SQLite files, then PostgreSQL) the orders service runs the way
``o2c up`` runs it (its own process, with its relay and its consumer, the embedded
broker), together with the partners service it learns partners from; the other
services are left out unless ``--whole-system`` (their reactions to every order
would compete for the same cores, and this measures the endpoint). Partners,
agreements, partner keys, products and a price list are set up over HTTP.

The load: ``concurrency`` clients (closed loop, one keep-alive connection each,
see :mod:`o2c.bench.load`), every request with a partner's key (partners in turn), a fresh
``Idempotency-Key`` and one or two catalog lines. The baseline
(:mod:`o2c.bench.baseline_app`) runs on the same database (a file next to the
services' files; a schema on the same PostgreSQL server) and gets the very same
requests from the same client. Rounds are interleaved (ours, baseline, ours, ...)
after an untimed warm-up of each; figures are medians of the rounds.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from libs.messaging.broker import free_port
from o2c.bench import profile
from o2c.bench.load import Request, Round, drive
from o2c.bench.system import (
    DEFAULT_PG_URL,
    RunningSystem,
    cpu_seconds,
    order_body,
    plain_pg_url,
    running_system,
    wait_partner_known,
)
from o2c.scenario import SetupError, poll
from o2c.supervisor import SERVICES

CONCURRENCY = 32
PARTNERS = 4
SKUS = tuple(f"BENCH-{n:02d}" for n in range(8))
API_SERVICES = ("partners", "orders")


def _requests(keys: list[str]) -> Any:
    def make(n: int) -> Request:
        return order_body(SKUS, n), {"Authorization": f"Bearer {keys[n % len(keys)]}",
                                     "Idempotency-Key": uuid.uuid4().hex}
    return make


@contextlib.contextmanager
def _baseline(folder: Path, database_url: str | None) -> Iterator[tuple[str, int]]:
    """The baseline app as a process on the same database; yields its URL and process id."""
    port, schema = free_port(), f"bench_base_{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, O2C_BENCH_BASELINE_PORT=str(port))
    if database_url:
        url = plain_pg_url(database_url)
        _pg(url, f'CREATE SCHEMA "{schema}"')
        env.update(O2C_BENCH_BASELINE_DB=url, O2C_BENCH_BASELINE_SCHEMA=schema)
    else:
        env["O2C_BENCH_BASELINE_DB"] = str(folder / "baseline.db")
    log = (folder / "baseline.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "o2c.bench.baseline_app"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=1, trust_env=False) as client:
            def health() -> int:
                if proc.poll() is not None:
                    raise SetupError(f"the baseline exited with {proc.returncode}")
                try:
                    return client.get(f"{base}/health").status_code
                except httpx.HTTPError:
                    return 0
            poll(health, lambda code: code == 200, "the baseline to answer")
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if database_url:
            _pg(plain_pg_url(database_url), f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _pg(url: str, statement: str) -> None:
    import asyncio

    async def run() -> None:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def _set_up(system: RunningSystem) -> list[str]:
    """Partners with keys, the catalog and a price list; the partner keys."""
    system.scenario.create_catalog(SKUS)
    keys = list(system.scenario.partner_keys(system.scenario.register_partners(PARTNERS)).values())
    for key in keys:
        wait_partner_known(system, key, SKUS)
    return keys


def _cpu_ms_per_request(pid: int, run: Callable[[], Round]) -> tuple[Round, float]:
    """``run``'s round and the CPU time (user + system) process ``pid`` spent per request on it."""
    before = cpu_seconds(pid)
    done = run()
    return done, round(1000 * (cpu_seconds(pid) - before) / max(1, done.requests), 3)


def _bench_database(database_url: str | None, requests: int, rounds: int, concurrency: int,
                    whole_system: bool, profile_dir: Path | None) -> dict[str, Any]:
    services = SERVICES if whole_system else API_SERVICES
    ours: list[Round] = []
    base: list[Round] = []
    cpu: dict[str, list[float]] = {"orders": [], "baseline": []}
    result: dict[str, Any] = {}
    with running_system(database_url, services) as system:
        make = _requests(_set_up(system))
        orders_url, orders_pid = system.urls["orders"], system.pids()["orders"]
        with _baseline(system.supervisor.data_dir, database_url) as (baseline_url, baseline_pid):
            warmup = max(50, requests // 10)
            drive(orders_url, "/v1/orders", warmup, concurrency, make)
            drive(baseline_url, "/v1/orders", warmup, concurrency, make)
            for _ in range(rounds):
                for side, rounds_of_side, pid, url in (("orders", ours, orders_pid, orders_url),
                                                       ("baseline", base, baseline_pid, baseline_url)):
                    done, ms = _cpu_ms_per_request(
                        pid, partial(drive, url, "/v1/orders", requests, concurrency, make))
                    rounds_of_side.append(done)
                    cpu[side].append(ms)
            if profile_dir is not None:  # an extra, untimed round under the sampler
                raw = profile_dir / f"orders-{system.backend}.txt"
                with profile.recording(orders_pid, raw):
                    drive(orders_url, "/v1/orders", requests, concurrency, make)
                result["profile"] = profile.summary(raw)
    result |= {
        "rps": round(statistics.median(r.rps for r in ours), 1),
        "baseline_rps": round(statistics.median(r.rps for r in base), 1),
        "p99_ms": round(statistics.median(r.percentile(0.99) for r in ours), 1),
        "baseline_p99_ms": round(statistics.median(r.percentile(0.99) for r in base), 1),
        "cpu_ms_per_request": round(statistics.median(cpu["orders"]), 3),
        "baseline_cpu_ms_per_request": round(statistics.median(cpu["baseline"]), 3),
        "cpu_ms_per_request_rounds": cpu,
        "rounds": [r.as_dict() for r in ours],
        "baseline_rounds": [r.as_dict() for r in base],
    }
    return result


def _ratio(ours: float, theirs: float) -> float:
    return round(ours / theirs, 3) if theirs else 0.0


def run(*, requests: int, rounds: int, concurrency: int = CONCURRENCY, pg_url: str | None = None,
        whole_system: bool = False, profile_dir: Path | None = None) -> dict[str, Any]:
    """Both databases, interleaved rounds; the JSON object ``o2c bench api`` prints."""
    started = time.perf_counter()
    url = pg_url or os.environ.get("O2C_BENCH_PG_URL") or DEFAULT_PG_URL
    sqlite = _bench_database(None, requests, rounds, concurrency, whole_system, profile_dir)
    pg = _bench_database(url, requests, rounds, concurrency, whole_system, profile_dir)
    return {
        "sqlite_rps": sqlite["rps"], "pg_rps": pg["rps"],
        "baseline_sqlite_rps": sqlite["baseline_rps"], "baseline_pg_rps": pg["baseline_rps"],
        "sqlite_ratio": _ratio(sqlite["rps"], sqlite["baseline_rps"]),
        "pg_ratio": _ratio(pg["rps"], pg["baseline_rps"]),
        "sqlite_p99_ms": sqlite["p99_ms"], "pg_p99_ms": pg["p99_ms"],
        "config": {"requests_per_round": requests, "rounds": rounds, "concurrency": concurrency,
                   "partners": PARTNERS, "services": list(SERVICES if whole_system else API_SERVICES),
                   "statistic": "median of interleaved rounds", "cpus": os.cpu_count()},
        "detail": {"sqlite": sqlite, "pg": pg},
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
