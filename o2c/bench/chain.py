"""``o2c bench chain``: orders through all six steps of the running system, over HTTP only.

The system is started the way ``o2c up`` starts it (all six services, the embedded
broker; SQLite files, or PostgreSQL with ``--database-url``). Set-up over HTTP:
partners on credit terms with agreements and keys, a catalog and price list,
stock, and a rebate program every partner is eligible for. Then:

- placing clients post orders with the partners' keys (closed loop: ``concurrency``
  clients, each placing its next order as soon as the last was accepted; or, with
  ``rate``, open loop: one order every ``1/rate`` s whatever the system does);
- a warehouse client lists pending shipments and dispatches each in full;
- a finance client lists open invoices and pays each (allocated to it);
- an order is done when its timeline in projections holds its approval, dispatch,
  shipment, invoice, payment and rebate accrual (so it is shipped, invoiced, paid,
  accrued, and visible in projections). A watcher follows the archive's event feed
  and fetches an order's timeline once the feed shows all of those.

One order per partner goes through the chain first, untimed, so every consumer
group has joined and every path is warm. Latencies come from the events' own
timestamps (one machine, one clock): ``approved`` = OrderPlaced -> OrderApproved,
``invoiced`` = ShipmentDispatched -> InvoiceIssued; ``projected`` = InvoicePaid ->
the moment the client first saw the whole chain in projections (so it includes the
client's polling, at most ``POLL_S`` plus one sweep of the feed). ``stuck`` are the orders not
done ``timeout`` seconds (default: ``max(120, orders / 2)``) after the last one was
placed. ``max_rss_mb`` is the largest resident size of any service process, sampled
from /proc every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from o2c.bench import profile
from o2c.bench.load import TRANSPORT_ERRORS, Client
from o2c.bench.system import RunningSystem, cpu_seconds, order_body, rss_mb, running_system

PARTNERS = 8
CONCURRENCY = 16
SKUS = tuple(f"CHAIN-{n:02d}" for n in range(6))
POLL_S = 0.1
WORKERS = 8
FEED_PAGE = 500
STRAGGLER_S = 2.0
"""Concurrent requests of the warehouse, the finance and the projections watcher each."""
DONE = frozenset({"OrderPlaced", "OrderApproved", "ShipmentDispatched", "OrderShipped", "InvoiceIssued",
                  "InvoicePaid", "RebateAccrued"})


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@dataclass
class Order:
    order_id: str
    partner_id: str
    warm: bool
    dispatched: bool = False
    paid: bool = False
    done_at: float | None = None
    stamps: dict[str, float] = field(default_factory=dict)


@dataclass
class Run:
    system: RunningSystem
    partner_keys: dict[str, str]
    orders: dict[str, Order] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    placed_first: float = 0.0
    placed_last: float = 0.0
    rss: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds of each service over the timed part (start figures until it ends)."""
    client_cpu: float = 0.0
    """CPU seconds of this process (the clients) over the timed part (likewise)."""
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by the projections watcher whenever an order is done."""

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def client(self, service: str, role: str) -> Client:
        return Client(self.system.urls[service],
                      {"Authorization": f"Bearer {self.system.scenario.key(role)}"})


async def _pages(client: Client, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = await client.get(path, params={**params, "limit": 200,
                                                  **({"cursor": cursor} if cursor else {})})
        if response.status_code != 200:
            return items
        page = response.json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


async def _bounded(jobs: list[Callable[[], Awaitable[None]]]) -> None:
    gate = asyncio.Semaphore(WORKERS)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(one(job) for job in jobs))


def _bounded_while(run: Run, jobs: list[Callable[[], Awaitable[None]]]) -> Awaitable[None]:
    """``_bounded``, dropping the jobs not started when the run stops."""

    def unless_stopped(job: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def guarded() -> None:
            if not run.stop.is_set():
                await job()
        return guarded

    return _bounded([unless_stopped(job) for job in jobs])


async def _sweeping(run: Run, sweep: Callable[[], Awaitable[int]]) -> None:
    """Call ``sweep`` until the run stops, pausing ``POLL_S`` after a sweep that moved nothing."""
    while not run.stop.is_set():
        try:
            moved = await sweep()
        except TRANSPORT_ERRORS:
            run.error("http")
            moved = 0
        if not moved:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.stop.wait(), POLL_S)


async def _warehouse(run: Run) -> None:
    async with run.client("delivery", "warehouse") as delivery:
        async def dispatch(shipment: dict[str, Any]) -> None:
            order = run.orders[shipment["order_id"]]
            response = await delivery.post(
                f"/v1/shipments/{shipment['id']}/dispatch",
                headers={"Idempotency-Key": f"dispatch-{shipment['id']}"},
                json={"lines": [{"sku": line["sku"], "qty": line["qty"]} for line in shipment["remaining"]],
                      "carrier": "bench", "tracking_no": shipment["id"]})
            if response.status_code == 200:
                order.dispatched = True
            else:
                run.error(f"dispatch {response.status_code}")

        async def sweep() -> int:
            due = [s for s in await _pages(delivery, "/v1/shipments", {"status": "pending"})
                   if s["order_id"] in run.orders and not run.orders[s["order_id"]].dispatched]
            await _bounded_while(run, [functools.partial(dispatch, s) for s in due])
            return len(due)

        await _sweeping(run, sweep)


async def _finance(run: Run) -> None:
    async with run.client("credit", "finance") as credit:
        async def pay(invoice: dict[str, Any]) -> None:
            amount = invoice["total_minor"] - invoice["paid_minor"]
            response = await credit.post("/v1/payments", headers={"Idempotency-Key": f"pay-{invoice['id']}"},
                                         json={"partner_id": invoice["partner_id"], "amount_minor": amount,
                                               "bank_ref": f"BENCH-{invoice['id']}",
                                               "received_on": str(date.today()),
                                               "allocations": [{"invoice_id": invoice["id"],
                                                                "amount_minor": amount}]})
            if response.status_code == 201:
                run.orders[invoice["order_id"]].paid = True
            else:
                run.error(f"payment {response.status_code}")

        async def sweep() -> int:
            due = [i for i in await _pages(credit, "/v1/invoices", {"status": "open"})
                   if i["order_id"] in run.orders and not run.orders[i["order_id"]].paid]
            await _bounded_while(run, [functools.partial(pay, i) for i in due])
            return len(due)

        await _sweeping(run, sweep)


async def _projections(run: Run) -> None:
    """Follow the archive's feed; confirm an order with its timeline once the feed shows it done.

    A watcher that fetched the timeline of every paid order on every sweep cost projections
    (and its database) a timeline query per pending order per sweep: tens per order while
    projections lagged, slowing the system it measured. The feed (``/v1/audit/events`` after a
    cursor, as an auditor's tool would read it) costs one request per page of events; an
    order is looked up by its timeline once its events are all in the feed, and a paid order
    the feed did not name (an event archived before its order was known) every
    ``STRAGGLER_S`` until done.
    """
    seen: dict[str, set[str]] = {}
    conversations: dict[str, str] = {}  # correlation id -> order id (from OrderPlaced)
    checked: dict[str, float] = {}  # order id -> when its timeline was last fetched
    waiting: dict[str, float] = {}  # paid order id -> when first seen paid and not done
    cursor = 0
    async with run.client("projections", "finance") as projections, \
            run.client("projections", "auditor") as auditor:
        async def check(order: Order) -> None:
            checked[order.order_id] = time.monotonic()
            response = await projections.get(f"/v1/views/orders/{order.order_id}/timeline")
            if response.status_code != 200:
                return
            seen_at = time.time()
            stamps: dict[str, float] = {}
            for event in response.json()["events"]:
                stamps.setdefault(event["type"], _epoch(event["occurred_at"]))
            if DONE <= stamps.keys():
                order.stamps, order.done_at = stamps, seen_at
                run.progress.set()

        async def follow() -> int:
            nonlocal cursor
            response = await auditor.get("/v1/audit/events", params={"after": cursor, "limit": FEED_PAGE})
            if response.status_code != 200:
                run.error(f"feed {response.status_code}")
                return 0
            items = response.json()["items"]
            for item in items:
                if item["type"] == "OrderPlaced" and item["order_id"]:
                    conversations[item["correlation_id"]] = item["order_id"]
                order_id = item["order_id"] or conversations.get(item["correlation_id"])
                if order_id in run.orders:
                    seen.setdefault(order_id, set()).add(item["type"])
            if items:
                cursor = items[-1]["received_seq"]
            return len(items)

        def is_due(order: Order, now: float) -> bool:
            last = checked.get(order.order_id)
            if last is None and DONE <= seen.get(order.order_id, set()):
                return True
            return now - (last or waiting.setdefault(order.order_id, now)) > STRAGGLER_S

        async def sweep() -> int:
            moved = await follow()
            now = time.monotonic()
            due = [o for o in run.orders.values() if o.paid and o.done_at is None and is_due(o, now)]
            await _bounded_while(run, [functools.partial(check, o) for o in due])
            return moved + sum(1 for o in due if o.done_at is not None)

        await _sweeping(run, sweep)


async def _sample_rss(run: Run) -> None:
    while not run.stop.is_set():
        for name, pid in run.system.pids().items():
            run.rss[name] = max(run.rss.get(name, 0.0), rss_mb(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.stop.wait(), 1.0)


async def _place(run: Run, orders: Client, n: int, warm: bool, partner_id: str) -> bool:
    key = uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {run.partner_keys[partner_id]}", "Idempotency-Key": key}
    try:
        response = await orders.post("/v1/orders", json=order_body(SKUS, n), headers=headers)
    except TRANSPORT_ERRORS:  # a kept-alive connection the server had just closed, say:
        run.error("place resent")  # the same key again, so the order is placed once
        response = await orders.post("/v1/orders", json=order_body(SKUS, n), headers=headers)
    if response.status_code != 201:
        run.error(f"place {response.status_code}")
        return False
    order_id = response.json()["id"]
    run.orders[order_id] = Order(order_id, partner_id, warm)
    return True


async def _until_done(run: Run, seconds: float) -> bool:
    """Wait until every order is done (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while any(o.done_at is None for o in run.orders.values()):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.progress.wait(), left)
        run.progress.clear()
    return True


async def _warm_up(run: Run, orders: Client, seconds: float) -> None:
    """One order per partner, placed once orders knows the partner, through the whole chain."""
    deadline = time.monotonic() + seconds
    for partner_id in run.partner_keys:
        while not await _place(run, orders, 0, True, partner_id):  # orders learns partners by events
            if time.monotonic() > deadline:
                raise RuntimeError(f"orders never accepted partner {partner_id}: {run.errors}")
            await asyncio.sleep(POLL_S)
    if not await _until_done(run, deadline - time.monotonic()):
        raise RuntimeError(f"the warm-up orders did not finish in {seconds:.0f}s: "
                           f"{[o for o in run.orders.values() if o.done_at is None]} {run.errors}")
    run.errors.clear()


async def _closed_loop(run: Run, orders: Client, count: int, concurrency: int) -> None:
    partners = list(run.partner_keys)
    numbers = iter(range(count))

    async def client() -> None:
        for n in numbers:
            await _place(run, orders, n, False, partners[n % len(partners)])

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def _open_loop(run: Run, orders: Client, count: int, rate: float) -> None:
    partners = list(run.partner_keys)
    started = time.monotonic()
    tasks = []
    for n in range(count):
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # the offered schedule, not a synchronisation
        tasks.append(asyncio.create_task(_place(run, orders, n, False, partners[n % len(partners)])))
    await asyncio.gather(*tasks)


async def _drive(run: Run, count: int, concurrency: int, rate: float | None, stuck_after: float,
                 profile_dir: Path | None) -> None:
    background = [asyncio.create_task(job(run)) for job in (_warehouse, _finance, _projections, _sample_rss)]
    try:
        async with run.client("orders", "sales") as orders:
            await _warm_up(run, orders, 120.0)
            with contextlib.ExitStack() as profiles:
                if profile_dir is not None:
                    for name in run.system.pids():
                        profiles.enter_context(profile.recording(
                            run.system.pids()[name], profile_dir / f"chain-{name}-{run.system.backend}.txt"))
                run.cpu = {name: cpu_seconds(pid) for name, pid in run.system.pids().items()}
                run.client_cpu = time.process_time()
                run.placed_first = time.time()
                if rate:
                    await _open_loop(run, orders, count, rate)
                else:
                    await _closed_loop(run, orders, count, concurrency)
                run.placed_last = time.time()
                await _until_done(run, stuck_after)
                run.cpu = {name: cpu_seconds(pid) - run.cpu.get(name, 0.0)
                           for name, pid in run.system.pids().items()}
                run.client_cpu = time.process_time() - run.client_cpu
    finally:
        run.stop.set()
        await asyncio.gather(*background, return_exceptions=True)


def _p(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def _latency(orders: list[Order], start: str, end: str) -> list[float]:
    return [o.stamps[end] - o.stamps[start] for o in orders if start in o.stamps and end in o.stamps]


def _result(run: Run, count: int, concurrency: int, rate: float | None, timeout: float) -> dict[str, Any]:
    timed = [o for o in run.orders.values() if not o.warm]
    done = [o for o in timed if o.done_at is not None]
    finished = max((o.done_at for o in done if o.done_at is not None), default=run.placed_last)
    approved = _latency(done, "OrderPlaced", "OrderApproved")
    invoiced = _latency(done, "ShipmentDispatched", "InvoiceIssued")
    projected = [o.done_at - o.stamps["InvoicePaid"] for o in done if o.done_at is not None]
    return {
        "orders": len(timed),
        "orders_per_s": round(len(done) / (finished - run.placed_first), 2) if done else 0.0,
        "approved_p99_s": _p(approved, 0.99),
        "invoiced_p99_s": _p(invoiced, 0.99),
        "projected_p99_s": _p(projected, 0.99),
        "stuck": count - len(done),
        "max_rss_mb": round(max(run.rss.values(), default=0.0), 1),
        "config": {"database": run.system.backend, "orders": count, "partners": len(run.partner_keys),
                   "mode": f"open loop, {rate} orders/s" if rate else f"closed loop, {concurrency} clients",
                   "stuck_after_s": timeout, "cpus": os.cpu_count()},
        "detail": {
            "approved_p50_s": _p(approved, 0.5), "invoiced_p50_s": _p(invoiced, 0.5),
            "projected_p50_s": _p(projected, 0.5),
            "placing_s": round(run.placed_last - run.placed_first, 2),
            "placed_per_s": round(len(timed) / (run.placed_last - run.placed_first), 2)
            if run.placed_last > run.placed_first else 0.0,
            "rss_mb": {name: round(mb, 1) for name, mb in run.rss.items()},
            "cpu_ms_per_order": {name: round(1000 * seconds / len(done), 1)
                                 for name, seconds in run.cpu.items()} if done else {},
            "client_cpu_ms_per_order": round(1000 * run.client_cpu / len(done), 1) if done else 0.0,
            "client_errors": run.errors,
        },
    }


def set_up(system: RunningSystem, partners: int, orders: int) -> Run:
    """Program, partners with keys, catalog, price list and enough stock for ``orders``."""
    scenario = system.scenario
    scenario.publish_program(rates=((0, 100), (10_000_000, 200)))
    partner_ids = scenario.register_partners(partners)
    scenario.create_catalog(SKUS)
    scenario.receive_stock(SKUS, 10 * (orders + partners) + 100)
    keys = scenario.partner_keys(partner_ids)
    scenario.staff_keys(("sales", "warehouse", "finance", "auditor"))
    return Run(system, keys)


def drive(state: Run, orders: int, *, concurrency: int = CONCURRENCY, rate: float | None = None,
          stuck_after: float = 60.0, profile_dir: Path | None = None) -> None:
    """Warm up, then place ``orders`` and follow them until done or ``stuck_after`` s passed."""
    asyncio.run(_drive(state, orders, concurrency, rate, stuck_after, profile_dir))


def run(*, orders: int, database_url: str | None = None, rate: float | None = None,
        partners: int = PARTNERS, concurrency: int = CONCURRENCY, timeout: float | None = None,
        profile_dir: Path | None = None) -> dict[str, Any]:
    """The JSON object ``o2c bench chain`` prints."""
    started = time.perf_counter()
    stuck_after = timeout if timeout is not None else max(120.0, orders / 2)
    with running_system(database_url) as system:
        state = set_up(system, partners, orders)
        drive(state, orders, concurrency=concurrency, rate=rate, stuck_after=stuck_after,
              profile_dir=profile_dir)
        result = _result(state, orders, concurrency, rate, stuck_after)
        if profile_dir is not None:
            result["profile"] = {
                name: profile.summary(profile_dir / f"chain-{name}-{system.backend}.txt")
                for name in system.pids()}
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    return result
