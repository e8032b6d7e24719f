"""The running system for the product-path benchmarks.

Benchmarks start the services the way ``o2c up`` does (:func:`o2c.scenario.supervisor_for`:
real processes, the embedded broker, free ports, a random PostgreSQL schema prefix
dropped afterwards) and set up partners, agreements, products, price lists, stock
and rebate programs through the real HTTP API (:class:`o2c.scenario.Scenario`, each
request sent once), as a new user would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import make_url

from libs.runtime.settings import RuntimeSettings
from libs.store.database import Database
from o2c.scenario import Direct, Scenario, order, poll, schema_prefix, supervisor_for
from o2c.supervisor import SERVICES, Supervisor

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def plain_pg_url(url: str) -> str:
    """``url`` for asyncpg (no ``+driver`` suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _drop_schemas(url: str, prefix: str) -> None:
    conn = await asyncpg.connect(plain_pg_url(url), timeout=10)
    try:
        rows = await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", prefix + "%")
        for (name,) in rows:
            await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
    finally:
        await conn.close()


@dataclass
class RunningSystem:
    """Services started by a :class:`Supervisor`, and the :class:`Scenario` set up in them."""

    supervisor: Supervisor
    backend: str
    scenario: Scenario = field(init=False)

    def __post_init__(self) -> None:
        self.scenario = Scenario(self.urls, self.admin_token, "bench", lambda token: Direct(self.urls, token))

    @property
    def urls(self) -> dict[str, str]:
        return self.supervisor.urls()

    @property
    def admin_token(self) -> str:
        return self.supervisor.admin_token

    @property
    def schema_prefix(self) -> str:
        return schema_prefix(self.supervisor)

    def database(self, service: str) -> Database:
        """The database of ``service``, as the service itself opens it."""
        return RuntimeSettings(data_dir=self.supervisor.data_dir, database_url=self.supervisor.database_url,
                               schema_prefix=self.schema_prefix).database(service)

    def pids(self) -> dict[str, int]:
        """Process ids of the running services (not the broker)."""
        return {name: pid for name, pid in self.supervisor.pids().items() if name != "broker"}

    def client(self, service: str, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.urls[service], timeout=30, trust_env=False,
                            headers={"Authorization": f"Bearer {token or self.admin_token}"})


@contextlib.contextmanager
def running_system(database_url: str | None, services: Sequence[str] = SERVICES,
                   data_dir: Path | None = None) -> Iterator[RunningSystem]:
    """Start ``services`` as ``o2c up`` does: SQLite files when ``database_url`` is None."""
    with contextlib.ExitStack() as stack:
        folder = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="o2c-bench-")))
        supervisor = supervisor_for(folder, database_url, "bench", services)
        try:
            supervisor.start()
            yield RunningSystem(supervisor, "postgres" if database_url else "sqlite")
        finally:
            supervisor.stop()
            if database_url:
                asyncio.run(_drop_schemas(database_url, schema_prefix(supervisor)))


def order_body(skus: Sequence[str], n: int) -> dict[str, Any]:
    """The ``n``-th order of a run: one or two lines of the catalog, small quantities."""
    lines = [{"sku": skus[n % len(skus)], "qty": 1 + n % 3}]
    if n % 2 and len(skus) > 1:
        lines.append({"sku": skus[(n + 1) % len(skus)], "qty": 1})
    return order(f"PO-{n}", lines, address="1 Bench Rd")


def wait_partner_known(system: RunningSystem, partner_key: str, skus: Sequence[str]) -> dict[str, Any]:
    """Place one order with ``partner_key`` as soon as orders knows the partner (warm-up)."""
    key = uuid.uuid4().hex
    with system.client("orders", partner_key) as orders:
        return poll(lambda: orders.post("/v1/orders", json=order_body(skus, 0),
                                        headers={"Idempotency-Key": key}),
                    lambda r: r.status_code == 201, "orders to know the partner").json()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, in seconds, from /proc (0 when gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB, from /proc (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
