"""The running system, started the way ``o2c up`` starts it: real processes, real broker, HTTP.

Runs once on SQLite files and once on PostgreSQL (each service in its own
schema under a random prefix, dropped afterwards).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from o2c.supervisor import Supervisor
from tests.conftest import PG_URL, integration_unavailable

T = TypeVar("T")


@dataclass
class System:
    supervisor: Supervisor
    urls: dict[str, str]
    admin: dict[str, str]
    backend: str
    role_keys: dict[str, str] = field(default_factory=dict)

    def client(self, service: str, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else self.admin
        return httpx.Client(base_url=self.urls[service], headers=headers, timeout=20)

    def ops(self, service: str) -> httpx.Client:
        """A client of ``service``'s internal port (``/health``, ``/ready``, ``/metrics``: no key)."""
        return httpx.Client(base_url=self.supervisor.ops_urls()[service], timeout=20)

    def as_role(self, service: str, role: str) -> httpx.Client:
        """A client with this session's staff key of ``role`` (issued once)."""
        if role not in self.role_keys:
            self.role_keys[role] = issue_key(self, role)
        return self.client(service, self.role_keys[role])


def eventually(probe: Callable[[], T], until: Callable[[T], bool], seconds: float = 30,
               what: str = "the system to converge") -> T:
    """Poll ``probe`` until ``until(result)`` holds (effects across services are asynchronous)."""
    deadline = time.monotonic() + seconds
    result = probe()
    while not until(result):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds}s waiting for {what}; last: {result!r}")
        time.sleep(0.1)
        result = probe()
    return result


def _pg_available() -> bool:
    import asyncio

    import asyncpg

    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(PG_URL, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


def _drop_schemas(prefix: str) -> None:
    import asyncio

    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            names = await conn.fetch(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", prefix + "%")
            for (name,) in names:
                await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


WEBHOOKS_FOR_TESTS = {
    "O2C_PROJECTIONS_WEBHOOK_ALLOW_LOOPBACK_HTTP": "true",  # the test receivers listen on 127.0.0.1
    "O2C_PROJECTIONS_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
    "O2C_PROJECTIONS_WEBHOOK_RETRY_CAP_SECONDS": "1",
}
"""Webhook pushes to plain-http loopback receivers, retried within a second, not minutes."""


def start_system(data_dir: Path, backend: str, prefix: str,
                 extra_env: dict[str, str] | None = None) -> Supervisor:
    from libs.messaging.broker import free_port

    ports = {name: free_port() for name in
             ("partners", "orders", "credit", "delivery", "rebates", "projections")}
    supervisor = Supervisor(
        data_dir,
        database_url=PG_URL if backend == "postgres" else None,
        admin_token="e2e-admin-token",
        ports=ports,
        broker_port=free_port(),
        extra_env={"O2C_SCHEMA_PREFIX": prefix, **WEBHOOKS_FOR_TESTS, **(extra_env or {})},
    )
    supervisor.start()
    return supervisor


@contextmanager
def running_system(backend: str, data_dir: Path, prefix: str = "e2e",
                   extra_env: dict[str, str] | None = None) -> Iterator[System]:
    """A whole system on ``backend`` (``extra_env``: more settings for every service), stopped
    (and its schemas dropped) afterwards."""
    if backend == "postgres" and not _pg_available():
        integration_unavailable(f"PostgreSQL at {PG_URL} unreachable")
    prefix = f"{prefix}{uuid.uuid4().hex[:8]}_"
    supervisor = start_system(data_dir, backend, prefix, extra_env)
    try:
        yield System(supervisor, supervisor.urls(), {"Authorization": "Bearer e2e-admin-token"},
                     backend)
    finally:
        supervisor.stop()
        if backend == "postgres":
            _drop_schemas(prefix)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def system(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with running_system(request.param, tmp_path_factory.mktemp(f"o2c-{request.param}")) as running:
        yield running


AUTHENTICATED_PROBES = {
    "partners": "/v1/partners/none", "orders": "/v1/orders/none", "credit": "/v1/invoices/none",
    "delivery": "/v1/shipments/none", "rebates": "/v1/programs/none",
    "projections": "/v1/audit/events",
}


def issue_key(system: System, role: str, partner_id: str | None = None) -> str:
    """Issue a key and wait until every service accepts it (keys travel as events)."""
    with system.client("partners") as partners:
        response = partners.post("/v1/keys", json={"role": role, "partner_id": partner_id,
                                                   "name": f"e2e {role}"})
    assert response.status_code == 201, response.text
    secret = response.json()["secret"]
    for service, probe in AUTHENTICATED_PROBES.items():
        with system.client(service, secret) as client:
            eventually(lambda c=client, p=probe: c.get(p).status_code, lambda s: s != 401,
                       what=f"{service} to accept the new {role} key")
    return secret


def body(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


def register_partner(system: System, *, tier: str, region: str, terms: dict[str, Any],
                     agreement: str = "annual") -> dict[str, Any]:
    """A partner with a signed agreement (so it can order)."""
    from datetime import date, timedelta

    with system.as_role("partners", "sales") as partners:
        partner = body(partners.post("/v1/partners", json={
            "name": f"Partner {uuid.uuid4().hex[:6]}", "legal_id": uuid.uuid4().hex[:18].upper(),
            "kind": "distributor", "tier": tier, "region": region, "territories": [region],
            "payment_terms": terms}), 201)
        today = date.today()
        body(partners.post(f"/v1/partners/{partner['id']}/agreements", json={
            "kind": agreement, "starts_on": str(today),
            "ends_on": str(today + timedelta(days=200))}), 201)
    return partner


def placed_order(system: System, partner_key: str, *, partner_ref: str, sku: str, qty: int,
                 region: str, status: str = "approved") -> dict[str, Any]:
    """A partner's one-line order, placed once orders knows the partner, then waited to ``status``."""
    with system.client("orders", partner_key) as orders:
        order = eventually(lambda: orders.post("/v1/orders", json={
            "partner_ref": partner_ref, "lines": [{"sku": sku, "qty": qty}],
            "ship_to": {"region": region}}), lambda r: r.status_code == 201,
            what="orders to know the partner").json()
        eventually(lambda: body(orders.get(f"/v1/orders/{order['id']}"))["status"],
                   lambda s: s == status, what=f"order {partner_ref} {status}")
    return order


def ensure_product(system: System, sku: str, list_price: int, stock: int) -> None:
    with system.as_role("orders", "sales") as orders:
        created = orders.post("/v1/products", json={"sku": sku, "name": sku, "category": "misc",
                                                    "list_price_minor": list_price})
        assert created.status_code in (201, 409), created.text
    with system.as_role("delivery", "warehouse") as delivery:
        body(delivery.post("/v1/stock/receipts", json={"sku": sku, "qty": stock,
                                                       "reference": uuid.uuid4().hex}), 201)


def dispatch(system: System, order_id: str, sku: str, qty: int,
             tracking_no: str | None = None) -> dict[str, Any]:
    """The warehouse dispatches ``qty`` of ``sku`` from the order's shipment, once it exists;
    the shipment as listed before the dispatch."""
    with system.as_role("delivery", "warehouse") as delivery:
        [shipment] = eventually(lambda: body(delivery.get(
            "/v1/shipments", params={"order_id": order_id}))["items"], bool, what=f"{order_id}'s shipment")
        body(delivery.post(f"/v1/shipments/{shipment['id']}/dispatch", json={
            "lines": [{"sku": sku, "qty": qty}], "carrier": "SF",
            "tracking_no": tracking_no or uuid.uuid4().hex[:8]}))
    return shipment
