"""The running system for the product-path benchmarks, and the HTTP walk that sets it up.

Benchmarks start the services the way ``o2c up`` does (:class:`o2c.supervisor.Supervisor`:
real processes, the embedded broker, free ports, a random PostgreSQL schema prefix
dropped afterwards) and set up partners, agreements, products, price lists, stock
and rebate programs through the real HTTP API, as a new user would.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
from sqlalchemy import make_url

from libs.messaging.broker import free_port
from libs.runtime.settings import RuntimeSettings
from libs.store.database import Database
from o2c.supervisor import SERVICES, Supervisor

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
SETUP_TIMEOUT_S = 60.0
PROBES = {
    "partners": "/v1/partners/none", "orders": "/v1/orders/none", "credit": "/v1/invoices/none",
    "delivery": "/v1/shipments/none", "rebates": "/v1/programs/none",
    "projections": "/v1/audit/events",
}
T = TypeVar("T")


class SetupError(RuntimeError):
    """The benchmark could not set the system up (an answer it did not expect, or a timeout)."""


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


def poll(probe: Callable[[], T], until: Callable[[T], bool], what: str,
         seconds: float = SETUP_TIMEOUT_S) -> T:
    """Call ``probe`` until ``until(result)`` holds (effects across services are asynchronous)."""
    deadline = time.monotonic() + seconds
    result = probe()
    while not until(result):
        if time.monotonic() > deadline:
            raise SetupError(f"timed out after {seconds:.0f}s waiting for {what}; last: {result!r}")
        time.sleep(0.1)
        result = probe()
    return result


def expect(response: httpx.Response, *statuses: int) -> Any:
    """The JSON body of an answer with one of ``statuses`` (default 200/201)."""
    if response.status_code not in (statuses or (200, 201)):
        raise SetupError(f"{response.request.method} {response.request.url}: "
                         f"{response.status_code} {response.text[:500]}")
    return response.json()


@dataclass
class RunningSystem:
    """Services started by a :class:`Supervisor`, with an admin token and staff keys."""

    supervisor: Supervisor
    backend: str
    admin_token: str
    schema_prefix: str
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def urls(self) -> dict[str, str]:
        return self.supervisor.urls()

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

    def issue_key(self, role: str, partner_id: str | None = None) -> str:
        """A new key, once every running service accepts it (keys travel as events)."""
        with self.client("partners") as partners:
            secret = expect(partners.post("/v1/keys", json={
                "role": role, "partner_id": partner_id, "name": f"bench {role}"}), 201)["secret"]
        for service in self.supervisor.services:
            with self.client(service, secret) as client:
                poll(lambda c=client, s=service: c.get(PROBES[s]).status_code, lambda code: code != 401,
                     f"{service} to accept the new {role} key")
        return secret

    def key(self, role: str) -> str:
        """This run's staff key of ``role`` (issued once)."""
        if role not in self.keys:
            self.keys[role] = self.issue_key(role)
        return self.keys[role]


@contextlib.contextmanager
def running_system(database_url: str | None, services: Sequence[str] = SERVICES,
                   data_dir: Path | None = None) -> Iterator[RunningSystem]:
    """Start ``services`` as ``o2c up`` does: SQLite files when ``database_url`` is None."""
    prefix = f"bench{uuid.uuid4().hex[:8]}_"
    token = secrets.token_urlsafe(24)
    with contextlib.ExitStack() as stack:
        folder = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="o2c-bench-")))
        supervisor = Supervisor(
            folder, database_url=database_url, services=services, admin_token=token,
            ports={name: free_port() for name in services}, broker_port=free_port(),
            extra_env={"O2C_SCHEMA_PREFIX": prefix})
        try:
            supervisor.start()
            yield RunningSystem(supervisor, "postgres" if database_url else "sqlite", token, prefix)
        finally:
            supervisor.stop()
            if database_url:
                asyncio.run(_drop_schemas(database_url, prefix))


# -- the setup walk (as in tests/e2e/test_order_to_cash.py) ---------------------------------


def register_partners(system: RunningSystem, count: int, *, tier: str = "A", region: str = "east",
                      credit_limit: int = 10**13) -> list[str]:
    """``count`` partners on credit terms with an active annual agreement; their ids."""
    today = date.today()
    ids = []
    with system.client("partners", system.key("sales")) as partners:
        for _ in range(count):
            partner = expect(partners.post("/v1/partners", json={
                "name": f"Bench {uuid.uuid4().hex[:6]}", "legal_id": uuid.uuid4().hex[:18].upper(),
                "kind": "distributor", "tier": tier, "region": region, "territories": [region],
                "payment_terms": {"kind": "credit", "credit_limit_minor": credit_limit,
                                  "term_days": 30}}), 201)
            expect(partners.post(f"/v1/partners/{partner['id']}/agreements", json={
                "kind": "annual", "starts_on": str(today - timedelta(days=1)),
                "ends_on": str(today + timedelta(days=300))}), 201)
            ids.append(partner["id"])
    return ids


def create_catalog(system: RunningSystem, skus: Sequence[str], *, tier: str = "A",
                   list_price: int = 10_000, discount_bp: int = 500) -> None:
    """Products and the tier's price list, through the orders service."""
    with system.client("orders", system.key("sales")) as orders:
        for sku in skus:
            expect(orders.post("/v1/products", json={"sku": sku, "name": sku, "category": "bench",
                                                     "list_price_minor": list_price}), 201)
        expect(orders.put(f"/v1/price-lists/{tier}", json={"effective_from": str(date.today()),
                                                          "discount_bp": discount_bp}))


def receive_stock(system: RunningSystem, skus: Sequence[str], qty: int) -> None:
    with system.client("delivery", system.key("warehouse")) as delivery:
        for sku in skus:
            expect(delivery.post("/v1/stock/receipts", json={"sku": sku, "qty": qty,
                                                             "reference": uuid.uuid4().hex}), 201)


def publish_program(system: RunningSystem, tier: str = "A") -> str:
    """A retroactive invoiced-basis rebate program for ``tier``, so every invoice accrues."""
    today = date.today()
    with system.client("rebates", system.key("finance")) as rebates:
        return str(expect(rebates.post("/v1/programs", json={
            "name": "Bench volume", "starts_on": str(today - timedelta(days=1)),
            "ends_on": str(today + timedelta(days=60)), "basis": "invoiced", "mode": "retroactive",
            "tiers": [{"from_minor": 0, "rate_bp": 100}, {"from_minor": 10_000_000, "rate_bp": 200}],
            "eligibility": {"tiers": [tier]}}), 201)["id"])


def order_body(skus: Sequence[str], n: int, region: str = "east") -> dict[str, Any]:
    """The ``n``-th order of a run: one or two lines of the catalog, small quantities."""
    lines = [{"sku": skus[n % len(skus)], "qty": 1 + n % 3}]
    if n % 2 and len(skus) > 1:
        lines.append({"sku": skus[(n + 1) % len(skus)], "qty": 1})
    return {"partner_ref": f"PO-{n}", "lines": lines,
            "ship_to": {"region": region, "address": "1 Bench Rd"}}


def wait_partner_known(system: RunningSystem, partner_key: str, skus: Sequence[str]) -> dict[str, Any]:
    """Place one order with ``partner_key`` as soon as orders knows the partner (warm-up)."""
    key = uuid.uuid4().hex
    with system.client("orders", partner_key) as orders:
        return poll(lambda: orders.post("/v1/orders", json=order_body(skus, 0),
                                        headers={"Idempotency-Key": key}),
                    lambda r: r.status_code == 201, "orders to know the partner").json()


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB, from /proc (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
