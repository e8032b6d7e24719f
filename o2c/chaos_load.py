"""The load of ``o2c chaos``: the business set up over HTTP, then clients that keep working.

Distributor clients place orders, each with its own ``Idempotency-Key`` (also its
``partner_ref``), retrying the same request on every error or timeout until it is
answered, the way a partner's system would; a 201 is an *acknowledged* order. A
warehouse client dispatches every pending shipment in full; a finance client pays
every open invoice with a payment of its own (``bank_ref`` = ``BR-<invoice id>``,
also the ``Idempotency-Key``). Every client records what it was told, so the
checks can hold the system to it.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx

from o2c.scenario import REGION, Scenario, expect, order

#: Answers worth the same request again: the service or its database is away, or a
#: concurrent twin of the request still holds its Idempotency-Key.
RETRY_STATUSES = frozenset({401, 408, 425, 429, 500, 502, 503, 504})
SKU = "CHAOS-1"
UNIT_PRICE = 1_000
STOCK = 10_000_000
CREDIT_LIMIT = 10**12
PARTNER_TIER = "A"

class GaveUp(RuntimeError):
    """A request was retried until its deadline without a definite answer."""


@dataclass
class Tally:
    """What the clients saw (thread-safe: every client appends under one lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[str] = field(default_factory=Counter)
    zero: float = field(default_factory=time.monotonic)  # ``at_s`` of answers counts from here
    answered_500: list[dict[str, Any]] = field(default_factory=list)  # {at_s, request, body}
    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)  # idempotency key -> order
    ids_by_key: dict[str, set[str]] = field(default_factory=dict)
    unanswered: list[str] = field(default_factory=list)  # keys whose request never got an answer
    refused: dict[str, str] = field(default_factory=dict)  # key -> status and body
    dispatched: set[str] = field(default_factory=set)  # shipment ids
    paid: dict[str, int] = field(default_factory=dict)  # bank_ref -> amount

    def saw(self, method: str, path: str, response: httpx.Response | None, error: str = "") -> None:
        with self.lock:
            if response is None:
                self.statuses[f"{method} transport-error"] += 1
                return
            self.statuses[f"{method} {response.status_code}"] += 1
            if response.status_code == 500:
                self.answered_500.append({"at_s": round(time.monotonic() - self.zero, 1),
                                          "request": f"{method} {path}", "body": response.text[:200]})


@dataclass
class Api:
    """HTTP to the running services with one key; :meth:`send` retries until a definite answer."""

    urls: dict[str, str]
    token: str
    tally: Tally
    timeout_s: float = 5.0
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(timeout=self.timeout_s, trust_env=False,
                                   headers={"Authorization": f"Bearer {self.token}"})

    def close(self) -> None:
        self.client.close()

    def once(self, service: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, self.urls[service] + path, **kwargs)

    def send(self, service: str, method: str, path: str, *, until: float,
             json: Any = None, params: dict[str, Any] | None = None,
             key: str | None = None) -> httpx.Response:
        """The first definite answer to this request (same body, same key on every retry).

        :raises GaveUp: only errors, timeouts and retryable statuses until ``until``.
        """
        headers = {"Idempotency-Key": key} if key else {}
        pause = 0.05
        while True:
            try:
                response = self.client.request(method, self.urls[service] + path, json=json,
                                               params=params, headers=headers)
            except httpx.HTTPError as error:
                self.tally.saw(method, path, None, str(error))
            else:
                self.tally.saw(method, path, response)
                concurrent_twin = response.status_code == 409 and "idempotency-key-reused" in response.text
                if response.status_code not in RETRY_STATUSES and not concurrent_twin:
                    return response
            if time.monotonic() > until:
                raise GaveUp(f"{method} {path}: no definite answer in time")
            time.sleep(pause)
            pause = min(1.0, pause * 2)

    def pages(self, service: str, path: str, params: dict[str, Any],
              until: float) -> Iterator[dict[str, Any]]:
        """Every item of a list (``limit``/``cursor`` pagination), retrying each page."""
        cursor: str | None = None
        while True:
            query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
            page = expect(self.send(service, "GET", path, params=query, until=until), 200)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return


@dataclass
class Until:
    """A :class:`o2c.scenario.Sender` over :meth:`Api.send`: each request retried until ``until``."""

    api: Api
    until: float

    def send(self, service: str, method: str, path: str, *, json: Any = None,
             key: str | None = None) -> httpx.Response:
        return self.api.send(service, method, path, until=self.until, json=json, key=key)

    def close(self) -> None:
        self.api.close()


# --------------------------------------------------------------------------- the business


@dataclass
class World:
    """The keys, partners and program the load runs against."""

    staff: dict[str, str]  # role -> secret
    partners: dict[str, str]  # partner id -> its partner key
    program_id: str


def set_up(admin: Api, partners: int, until: float) -> World:
    """Staff keys, ``partners`` credit distributors with agreements and keys, stock, a rebate program
    (:class:`o2c.scenario.Scenario`, every request retried until ``until``); no price list."""
    scenario = Scenario(admin.urls, admin.token, "chaos",
                        lambda token: Until(Api(admin.urls, token, admin.tally), until),
                        setup_s=max(0.0, until - time.monotonic()))
    scenario.staff_keys(("sales", "finance", "warehouse"))
    scenario.create_catalog([SKU], list_price=UNIT_PRICE, discount_bp=None)
    scenario.receive_stock([SKU], STOCK)
    program_id = scenario.publish_program(PARTNER_TIER)
    partner_ids = scenario.register_partners(partners, tier=PARTNER_TIER, region=REGION,
                                             credit_limit=CREDIT_LIMIT)
    return World(staff=scenario.staff, partners=scenario.partner_keys(partner_ids), program_id=program_id)


# --------------------------------------------------------------------------- the clients


@dataclass
class Clients:
    """The load's threads; ``placing`` stops new orders, ``working`` stops everything."""

    urls: dict[str, str]
    world: World
    tally: Tally
    seed: int = 0
    pause_s: float = 0.05
    answer_within_s: float = 60.0
    placing: threading.Event = field(default_factory=threading.Event)
    working: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.placing.set()
        self.working.set()
        for index, (partner_id, key) in enumerate(self.world.partners.items()):
            self._run(f"distributor-{index}", functools.partial(self._distributor, partner_id, key, index))
        self._run("warehouse", self._warehouse)
        self._run("finance", self._finance)

    def placing_in_flight(self) -> bool:
        """True while a distributor still retries an order (after ``placing`` was cleared)."""
        return any(t.is_alive() for t in self._threads if t.name.startswith("distributor"))

    def stop(self) -> None:
        self.placing.clear()
        self.working.clear()
        for thread in self._threads:
            thread.join()

    def _run(self, name: str, work: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                work()
            except Exception as error:  # a client that dies is a finding, not a hang
                self.errors.append(f"{name}: {type(error).__name__}: {error}")

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _distributor(self, partner_id: str, key: str, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        api = Api(self.urls, key, self.tally)
        try:
            number = 0
            while self.placing.is_set():
                number += 1
                self._place(api, f"chaos-{partner_id}-{number}", rng.randint(1, 3))
                time.sleep(self.pause_s)
        finally:
            api.close()

    def _place(self, api: Api, key: str, qty: int) -> None:
        try:
            response = api.send("orders", "POST", "/v1/orders", key=key,
                                json=order(key, [{"sku": SKU, "qty": qty}], address="1 Chaos Rd"),
                                until=time.monotonic() + self.answer_within_s)
        except GaveUp:
            with self.tally.lock:
                self.tally.unanswered.append(key)
            return
        with self.tally.lock:
            if response.status_code == 201:
                placed = response.json()
                self.tally.ids_by_key.setdefault(key, set()).add(placed["id"])
                self.tally.acknowledged.setdefault(key, placed)
            else:
                self.tally.refused[key] = f"{response.status_code} {response.text[:200]}"

    def _warehouse(self) -> None:
        """Dispatch every pending shipment in full."""
        self._work_through("warehouse", "delivery", "/v1/shipments", {"status": "pending"}, self._dispatch)

    def _work_through(self, role: str, service: str, path: str, params: dict[str, Any],
                      act: Callable[[Api, dict[str, Any]], None]) -> None:
        """Until stopped: list what is to do (``path`` filtered by ``params``) and ``act`` on each."""
        api = Api(self.urls, self.world.staff[role], self.tally)
        try:
            while self.working.is_set():
                try:
                    todo = list(api.pages(service, path, params, until=time.monotonic() + 5))
                except GaveUp:
                    continue
                for item in todo:
                    if not self.working.is_set():
                        return
                    act(api, item)
                time.sleep(self.pause_s)
        finally:
            api.close()

    def _dispatch(self, api: Api, shipment: dict[str, Any]) -> None:
        lines = [{"sku": line["sku"], "qty": line["qty"]} for line in shipment["remaining"] if line["qty"]]
        try:
            response = api.send("delivery", "POST", f"/v1/shipments/{shipment['id']}/dispatch",
                                key=f"dispatch-{shipment['id']}", until=time.monotonic() + 10,
                                json={"lines": lines, "carrier": "SF", "tracking_no": shipment["id"]})
        except GaveUp:
            return  # still pending: the next round tries again
        if response.status_code == 200:
            with self.tally.lock:
                self.tally.dispatched.add(shipment["id"])

    def _finance(self) -> None:
        """Pay every open invoice with a payment of its own."""
        self._work_through("finance", "credit", "/v1/invoices", {"status": "open"}, self._pay)

    def _pay(self, api: Api, invoice: dict[str, Any]) -> None:
        bank_ref = f"BR-{invoice['id']}"
        amount = invoice["total_minor"]
        try:
            response = api.send("credit", "POST", "/v1/payments", key=bank_ref, until=time.monotonic() + 10,
                                json={"partner_id": invoice["partner_id"], "amount_minor": amount,
                                      "bank_ref": bank_ref, "received_on": str(date.today()),
                                      "allocations": [{"invoice_id": invoice["id"], "amount_minor": amount}]})
        except GaveUp:
            return
        if response.status_code == 201 or "duplicate-bank-ref" in response.text:
            with self.tally.lock:
                self.tally.paid[bank_ref] = amount
