"""The business world a driver sets up over HTTP, once for every driver of the running system.

The product-path benchmarks (:mod:`o2c.bench`) and the fault-injection load
(:mod:`o2c.chaos_load`) both start the system the way ``o2c up`` does and walk it
through the real API as a new user would: staff keys, credit distributors with an
annual agreement and a key each, products (and a tier's price list), stock, a
retroactive rebate program. That walk lives here. What carries each request is
the driver's: the benchmarks send each request once (:class:`Direct`); the chaos
load retries until a definite answer, because services die under it. So a
:class:`Scenario` only asks for a :class:`Sender` per key (``connect``).

Every POST of the walk carries an ``Idempotency-Key`` (the PUT of a price list is
idempotent itself), so a sender that retries never doubles a partner, a receipt or
a program.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx

from libs.messaging.broker import free_ports
from o2c.supervisor import SERVICES, Supervisor

SETUP_TIMEOUT_S = 60.0
REGION = "east"
#: A probe per service that any valid key may call (401 until the key has reached it).
KEY_PROBES = {
    "partners": "/v1/partners/none", "orders": "/v1/orders/none", "credit": "/v1/invoices/none",
    "delivery": "/v1/shipments/none", "rebates": "/v1/programs/none",
    "projections": "/v1/audit/events",
}
T = TypeVar("T")


class SetupError(RuntimeError):
    """An answer the driver did not expect, or a condition that did not come in time."""


def supervisor_for(data_dir: Path, database_url: str | None, label: str,
                   services: Sequence[str] = SERVICES) -> Supervisor:
    """A supervisor (not started) for a driver's own system: free ports, a new admin token,
    and a random schema prefix ``<label><hex>_`` (in ``extra_env``) so runs never meet.

    The broker keeps its port across restarts (no preferred fallback port).
    """
    ports = free_ports(len(services) + 1)
    return Supervisor(
        data_dir, database_url=database_url, services=services, admin_token=secrets.token_urlsafe(24),
        ports=dict(zip(services, ports[:-1], strict=True)), broker_port=ports[-1],
        preferred_broker_port=None, extra_env={"O2C_SCHEMA_PREFIX": f"{label}{uuid.uuid4().hex[:8]}_"})


def schema_prefix(supervisor: Supervisor) -> str:
    """The schema prefix :func:`supervisor_for` gave ``supervisor``."""
    return supervisor.extra_env["O2C_SCHEMA_PREFIX"]


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
        raise SetupError(f"{response.request.method} {response.request.url} answered "
                         f"{response.status_code}: {response.text[:500]}")
    return response.json()


def order(partner_ref: str, lines: list[dict[str, Any]], *, address: str,
          region: str = REGION) -> dict[str, Any]:
    """The body of ``POST /v1/orders``."""
    return {"partner_ref": partner_ref, "lines": lines, "ship_to": {"region": region, "address": address}}


def wait_for_keys(urls: dict[str, str], keys: Sequence[str], seconds: float = SETUP_TIMEOUT_S) -> None:
    """Return once every service in ``urls`` accepts every key (keys travel as events)."""
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=5, trust_env=False) as client:
        for key in keys:
            for service, url in urls.items():
                if service in KEY_PROBES:
                    probe = functools.partial(client.get, url + KEY_PROBES[service],
                                              headers={"Authorization": f"Bearer {key}"})
                    poll(probe, lambda response: response.status_code != 401,
                         f"{service} to accept a new key", max(0.0, deadline - time.monotonic()))


class Sender(Protocol):
    """Sends one request of the walk with one key (once, or retrying: the driver's choice)."""

    def send(self, service: str, method: str, path: str, *, json: Any = None,
             key: str | None = None) -> httpx.Response: ...

    def close(self) -> None: ...


@dataclass
class Direct:
    """A :class:`Sender` that sends each request once (a system that is not being hurt)."""

    urls: dict[str, str]
    token: str
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(timeout=30, trust_env=False,
                                   headers={"Authorization": f"Bearer {self.token}"})

    def send(self, service: str, method: str, path: str, *, json: Any = None,
             key: str | None = None) -> httpx.Response:
        return self.client.request(method, self.urls[service] + path, json=json,
                                   headers={"Idempotency-Key": key} if key else {})

    def close(self) -> None:
        self.client.close()


@dataclass
class Scenario:
    """The walk that sets the business up, with the keys it issued.

    :param label: names what it creates (keys, partners, programs), e.g. ``bench``.
    :param connect: a :class:`Sender` for a key.
    :param staff: role -> the staff key of that role (issued once, see :meth:`key`).
    """

    urls: dict[str, str]
    admin_token: str
    label: str
    connect: Callable[[str], Sender]
    setup_s: float = SETUP_TIMEOUT_S
    staff: dict[str, str] = field(default_factory=dict)

    @contextlib.contextmanager
    def sender(self, role: str | None = None) -> Iterator[Sender]:
        """A sender with the staff key of ``role`` (the admin token when None)."""
        sender = self.connect(self.key(role) if role else self.admin_token)
        try:
            yield sender
        finally:
            sender.close()

    def issue_key(self, role: str, partner_id: str | None = None, *, wait: bool = True) -> str:
        """A new key; with ``wait``, once every service accepts it (else see :func:`wait_for_keys`)."""
        with self.sender() as admin:
            secret = str(expect(admin.send("partners", "POST", "/v1/keys", key=uuid.uuid4().hex, json={
                "role": role, "partner_id": partner_id, "name": f"{self.label} {role}"}), 201)["secret"])
        if wait:
            wait_for_keys(self.urls, [secret], self.setup_s)
        return secret

    def key(self, role: str) -> str:
        """The staff key of ``role`` (issued once)."""
        if role not in self.staff:
            self.staff[role] = self.issue_key(role)
        return self.staff[role]

    def staff_keys(self, roles: Sequence[str]) -> None:
        """Issue the staff keys of ``roles`` not issued yet, then wait for all of them at once."""
        new = {role: self.issue_key(role, wait=False) for role in roles if role not in self.staff}
        wait_for_keys(self.urls, list(new.values()), self.setup_s)
        self.staff.update(new)

    def register_partners(self, count: int, *, tier: str = "A", region: str = REGION,
                          credit_limit: int = 10**13) -> list[str]:
        """``count`` distributors on credit terms, each with an active annual agreement; their ids."""
        today = date.today()
        ids = []
        with self.sender("sales") as sales:
            for index in range(count):
                tag = uuid.uuid4().hex[:18].upper()
                partner = expect(sales.send("partners", "POST", "/v1/partners", key=f"p-{tag}", json={
                    "name": f"{self.label.title()} distributor {index} {tag[:6]}", "legal_id": tag,
                    "kind": "distributor", "tier": tier, "region": region, "territories": [region],
                    "payment_terms": {"kind": "credit", "credit_limit_minor": credit_limit,
                                      "term_days": 30}}), 201)
                expect(sales.send("partners", "POST", f"/v1/partners/{partner['id']}/agreements",
                                  key=f"a-{tag}", json={
                                      "kind": "annual", "starts_on": str(today - timedelta(days=1)),
                                      "ends_on": str(today + timedelta(days=300))}), 201)
                ids.append(partner["id"])
        return ids

    def partner_keys(self, partner_ids: Sequence[str]) -> dict[str, str]:
        """A partner key per partner (``partner id -> key``), once every service accepts them all."""
        keys = {partner_id: self.issue_key("partner", partner_id, wait=False) for partner_id in partner_ids}
        wait_for_keys(self.urls, list(keys.values()), self.setup_s)
        return keys

    def create_catalog(self, skus: Sequence[str], *, list_price: int = 10_000, tier: str = "A",
                       discount_bp: int | None = 500) -> None:
        """Products (one already there is fine) and, unless ``discount_bp`` is None, the tier's
        price list, through the orders service."""
        with self.sender("sales") as sales:
            for sku in skus:
                expect(sales.send("orders", "POST", "/v1/products", key=f"product-{sku}", json={
                    "sku": sku, "name": sku, "category": self.label, "list_price_minor": list_price}),
                       201, 409)
            if discount_bp is not None:
                expect(sales.send("orders", "PUT", f"/v1/price-lists/{tier}", json={
                    "effective_from": str(date.today()), "discount_bp": discount_bp,
                    "override_reason": "the scenario's opening prices"}))

    def receive_stock(self, skus: Sequence[str], qty: int) -> None:
        """``qty`` of each of ``skus`` into the warehouse."""
        with self.sender("warehouse") as warehouse:
            for sku in skus:
                reference = f"GRN-{uuid.uuid4().hex[:8]}"
                expect(warehouse.send("delivery", "POST", "/v1/stock/receipts", key=f"receipt-{reference}",
                                      json={"sku": sku, "qty": qty, "reference": reference}), 201)

    def publish_program(self, tier: str = "A", rates: Sequence[tuple[int, int]] = ((0, 100),)) -> str:
        """A retroactive invoiced-basis rebate program for ``tier`` (``rates``: ``(from_minor,
        rate_bp)`` steps, the first from 0 so every invoice accrues); its id."""
        today = date.today()
        with self.sender("finance") as finance:
            return str(expect(finance.send("rebates", "POST", "/v1/programs", key=uuid.uuid4().hex, json={
                "name": f"{self.label.title()} volume", "starts_on": str(today - timedelta(days=1)),
                "ends_on": str(today + timedelta(days=60)), "basis": "invoiced", "mode": "retroactive",
                "tiers": [{"from_minor": low, "rate_bp": rate} for low, rate in rates],
                "eligibility": {"tiers": [tier]}}), 201)["id"])
