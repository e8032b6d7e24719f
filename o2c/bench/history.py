"""``o2c bench history``: does a credit decision cost more when the account has a long history?

The credit service runs in this process with its real context (``start_context``:
migrations, store, key ring), its real consumer (``consumer_for``; events are
handed to ``Consumer.handle``, the path every record from Kafka takes, inbox and
order guard included) and its real HTTP app (``build_app``, called through an
in-process ASGI transport). Upstream events (partners, orders, delivery) are
appended to real event stores of their own first, so credit gets real envelopes.

For each size (10, 1,000 and 10,000 orders by default) one partner's account is
given that many orders behind it: each order reviewed, invoiced and paid, decided
by credit's own ``decide_*`` functions on the account's state and saved by
``Unit.save`` (the append and the read models every command writes), in
batches so a 10,000-order history takes seconds, not hours; each order also has
its copy in credit (``copies.keep_order``). What is timed, on each account in
turn (interleaved rounds), is one more order going through the real paths:

- a funds review: ``OrderConfirmed`` handled by the consumer;
- an invoice: ``ShipmentDispatched`` handled by the consumer;
- a payment: ``POST /v1/payments`` (finance key, ``Idempotency-Key``).

``ms_at_N`` is the median over rounds of the sum of the three.

Credit loads an account from the state it last loaded in the process, or from
its latest snapshot, and folds only the events after it (``libs.store.snapshots``).
One untimed order per account goes first (warm-up): it pays the process's
imports and the account's first load in the process (decoding its snapshot and
folding the events after it); ``detail.first_order_ms`` shows what it took. The states
the process remembers are forgotten before it, as after a restart: the history is saved
without being loaded, so what the process remembered is each account as it was opened, and
the first load would fold the whole history from there instead of reading the snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from libs.events import delivery as dl
from libs.events import orders as od
from libs.events import partners as pt
from libs.events.base import DomainEvent, EventMetadata
from libs.events.envelope import Envelope
from libs.events.values import InvoiceLine, OrderLine, PaymentTerms, SkuQty
from libs.messaging.consumer import Consumer, Outcome
from libs.runtime.auth import hash_secret
from libs.runtime.commands import Unit
from libs.runtime.host import ServiceContext, build_app, consumer_for, start_context
from libs.runtime.ids import new_id
from libs.runtime.settings import RuntimeSettings
from libs.store.database import Database
from libs.store.store import EventStore
from o2c.bench.system import _drop_schemas
from services.credit.app import SPEC
from services.credit.application import accounts, copies
from services.credit.domain.account import fold_live
from services.credit.domain.funds import decide_funds_review
from services.credit.domain.invoicing import decide_invoice
from services.credit.domain.receipts import decide_payment

SIZES = (10, 1_000, 10_000)
SAVE_EVERY = 400
"""Events per ``Unit.save`` while the history is built."""
UNIT_PRICE = 9_000
SKU = "BENCH-01"
TIER, REGION = "A", "east"


class Upstream:
    """The other services' stores: where the events credit reacts to are really appended."""

    def __init__(self, folder: Path) -> None:
        self.dbs = {name: Database(f"sqlite:///{folder / f'upstream-{name}.db'}")
                    for name in ("partners", "orders", "delivery")}
        self.stores = {name: EventStore(db) for name, db in self.dbs.items()}

    async def open(self) -> None:
        from libs.store.migrate import migrate

        for db in self.dbs.values():
            await migrate(db)

    async def append(self, service: str, stream: str, stream_type: str,
                     events: Sequence[DomainEvent]) -> list[Envelope]:
        return await self.stores[service].append(stream, stream_type, None, events,
                                                 EventMetadata(actor="bench"))

    async def close(self) -> None:
        for db in self.dbs.values():
            await db.dispose()


async def _handle(consumer: Consumer, envelopes: Sequence[Envelope]) -> None:
    for envelope in envelopes:
        outcome = await consumer.handle(envelope)
        if outcome not in (Outcome.APPLIED, Outcome.IGNORED):
            raise RuntimeError(f"credit's consumer answered {outcome} to {envelope.event_type}")


def _order(partner_id: str, order_id: str, qty: int = 1) -> od.OrderPlaced:
    line = OrderLine(sku=SKU, qty=qty, category="bench", unit_price_minor=UNIT_PRICE,
                     line_total_minor=qty * UNIT_PRICE)
    return od.OrderPlaced(order_id=order_id, partner_id=partner_id, partner_ref=order_id,
                          lines=[line], ship_to_region=REGION, total_minor=line.line_total_minor,
                          payment_kind="credit")


async def _open_account(upstream: Upstream, consumer: Consumer) -> str:
    partner_id = new_id("ptn")
    registered = pt.PartnerRegistered(
        partner_id=partner_id, name=f"Bench {partner_id}", legal_id=partner_id.upper(),
        kind="distributor", tier=TIER, region=REGION, territories=[REGION], categories=[],
        payment_terms=PaymentTerms(kind="credit", credit_limit_minor=10**13, term_days=30))
    await _handle(consumer, await upstream.append("partners", f"partner-{partner_id}", "partner",
                                                  [registered]))
    return partner_id


async def _build_history(ctx: ServiceContext, partner_id: str, orders: int) -> None:
    """``orders`` orders reviewed, invoiced and paid, decided and saved by credit's own code."""
    today = date.today()
    meta = EventMetadata(actor="bench:history")
    async with ctx.db.transaction() as conn:
        loaded = await accounts.load_for_update(Unit(ctx, conn, meta), partner_id)
    state, version = loaded.state, loaded.version
    pending: list[Any] = []
    placed: list[Any] = []

    async def save() -> None:
        nonlocal version
        async with ctx.db.transaction() as conn:
            for event in placed:
                await copies.keep_order(Unit(ctx, conn, meta), event)
            await Unit(ctx, conn, meta).save(
                accounts.Loaded(accounts.ACCOUNT, partner_id, start_state, version), pending)
        version += len(pending)

    start_state = state
    for n in range(orders):
        order_id = new_id("ord")
        placed.append(_order(partner_id, order_id))
        decided: list[DomainEvent] = list(decide_funds_review(state, order_id, UNIT_PRICE, today))
        state = fold_live(state, decided)
        invoice = decide_invoice(
            state, invoice_id=new_id("inv"), order_id=order_id, dispatch_id=new_id("dsp"),
            lines=[InvoiceLine(sku=SKU, category="bench", qty=1, unit_price_minor=UNIT_PRICE,
                               line_total_minor=UNIT_PRICE)],
            issued_on=today, region=REGION, tier=TIER, today=today)
        state = fold_live(state, invoice)
        paid = decide_payment(state, payment_id=new_id("pay"), amount=UNIT_PRICE, currency=state.currency,
                              bank_ref=f"HIST-{partner_id}-{n}", received_on=today, allocations=None,
                              today=today)
        state = fold_live(state, paid)
        pending += [*decided, *invoice, *paid]
        if len(pending) >= SAVE_EVERY or n == orders - 1:
            await save()
            start_state, pending, placed = state, [], []


async def _one_more_order(ctx: ServiceContext, upstream: Upstream, consumer: Consumer,
                          client: httpx.AsyncClient, partner_id: str) -> dict[str, float]:
    """Review, invoice and pay one new order on the account; milliseconds of each step."""
    order_id = new_id("ord")
    placed, confirmed = await upstream.append("orders", f"order-{order_id}", "order", [
        _order(partner_id, order_id), od.OrderConfirmed(order_id=order_id)])
    await _handle(consumer, [placed])
    dispatched = (await upstream.append("delivery", f"shipment-{order_id}", "shipment", [
        dl.ShipmentDispatched(
            shipment_id=new_id("shp"), order_id=order_id, partner_id=partner_id,
            dispatch_id=new_id("dsp"), lines=[SkuQty(sku=SKU, qty=1)], carrier="bench",
            tracking_no=order_id, dispatched_on=date.today(), remaining=[], complete=True)]))[0]
    timings: dict[str, float] = {}
    started = time.perf_counter()
    await _handle(consumer, [confirmed])
    timings["funds_review"] = time.perf_counter() - started
    started = time.perf_counter()
    await _handle(consumer, [dispatched])
    timings["invoice"] = time.perf_counter() - started
    started = time.perf_counter()
    response = await client.post("/v1/payments", headers={"Idempotency-Key": uuid.uuid4().hex}, json={
        "partner_id": partner_id, "amount_minor": UNIT_PRICE, "bank_ref": f"PAY-{order_id}",
        "received_on": str(date.today())})
    timings["payment"] = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"POST /v1/payments answered {response.status_code}: {response.text[:300]}")
    return {name: seconds * 1000 for name, seconds in timings.items()}


@contextlib.asynccontextmanager
async def _credit(folder: Path, database_url: str | None) -> AsyncIterator[tuple[ServiceContext, str]]:
    """Credit's context on a fresh database (a random schema on PostgreSQL, dropped after)."""
    prefix = f"benchhist{uuid.uuid4().hex[:8]}_"
    token = uuid.uuid4().hex
    settings = RuntimeSettings(data_dir=folder, database_url=database_url, schema_prefix=prefix,
                               admin_token=token, kafka_bootstrap="127.0.0.1:1")
    ctx = await start_context(SPEC, settings)
    try:
        yield ctx, token
    finally:
        await ctx.db.dispose()
        if database_url:
            await _drop_schemas(database_url, prefix)


async def _run(database_url: str | None, sizes: Sequence[int], rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="o2c-bench-history-") as name:
        folder = Path(name)
        upstream = Upstream(folder)
        await upstream.open()
        try:
            async with _credit(folder, database_url) as (ctx, _token):
                consumer = consumer_for(SPEC, ctx)
                secret = uuid.uuid4().hex
                await _handle(consumer, await upstream.append("partners", "key-bench", "key", [
                    pt.KeyIssued(key_id=new_id("key"), role="finance", name="bench finance",
                                 secret_sha256=hash_secret(secret))]))
                await ctx.keyring.refresh()
                build: dict[int, float] = {}
                partners: dict[int, str] = {}
                for size in sizes:
                    started = time.perf_counter()
                    partners[size] = await _open_account(upstream, consumer)
                    await _build_history(ctx, partners[size], size)
                    build[size] = round(time.perf_counter() - started, 2)
                accounts.SNAPSHOTS.forget()  # as after a restart: the first loads read the snapshots
                samples: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
                transport = httpx.ASGITransport(app=build_app(SPEC, ctx))
                async with httpx.AsyncClient(transport=transport, base_url="http://credit",
                                             headers={"Authorization": f"Bearer {secret}"}) as client:
                    first: dict[int, float] = {}
                    for size in sizes:  # warm-up: imports, and the account's first load in the process
                        first[size] = round(sum((await _one_more_order(
                            ctx, upstream, consumer, client, partners[size])).values()), 2)
                    for _ in range(rounds):
                        for size in sizes:
                            samples[size].append(
                                await _one_more_order(ctx, upstream, consumer, client, partners[size]))
                await consumer.close()
        finally:
            await upstream.close()
    return {"samples": samples, "build_s": build, "first_ms": first}


def run(*, sizes: Sequence[int] = SIZES, rounds: int = 3, database_url: str | None = None
        ) -> dict[str, Any]:
    """The JSON object ``o2c bench history`` prints (``ms_at_<size>`` for each size)."""
    if len(sizes) < 2:
        raise ValueError("give at least two sizes")
    started = time.perf_counter()
    raw = asyncio.run(_run(database_url, sizes, rounds))
    totals = {size: round(statistics.median(sum(s.values()) for s in raw["samples"][size]), 2)
              for size in sizes}
    steps = {size: {step: round(statistics.median(s[step] for s in raw["samples"][size]), 2)
                    for step in ("funds_review", "invoice", "payment")} for size in sizes}
    smallest, largest = min(sizes), max(sizes)
    return {
        **{f"ms_at_{size}": totals[size] for size in sizes},
        f"ratio_{largest}_to_{smallest}": round(totals[largest] / totals[smallest], 2),
        "config": {"database": "postgresql" if database_url else "sqlite", "rounds": rounds,
                   "sizes": list(sizes), "statistic": "median of interleaved rounds",
                   "cpus": os.cpu_count()},
        "detail": {"ms_per_step": steps, "history_build_s": raw["build_s"],
                   "first_order_ms": raw["first_ms"]},
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
