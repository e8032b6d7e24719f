"""Credit's account, its statement and the projections' aging and partner 360 tell one story, on both
databases: the projections are fed exactly the events credit stored, as its relay would publish them.

- a backdated receipt moves ``paid_on`` and the aging alike;
- after a randomised, bounded run of orders, dispatches, payments, refund returns, write-offs
  and rebate settlements both ways (fixed seeds), for every partner: credit's balance = the
  statement's closing balance = the aging total = the 360's balance; the aging's buckets add up
  to what credit has open (invoices + debit notes), its on-account column to the money on the
  account: total = buckets - on account.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from libs.messaging.consumer import Outcome
from libs.store.database import Database
from services.credit.domain.account import stream_id
from tests.conftest import empty_database
from tests.credit.support import OPENED_DAYS_AGO, TODAY, Feed, account, invoices, ok, pay
from tests.projections.support import projections, registered
from tests.service_support import RunningService


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


@pytest.fixture
async def other_db(db: Database, tmp_path: Path) -> AsyncIterator[Database]:
    """A second, empty database on the same backend as ``db`` (the projections' own)."""
    async for database in empty_database(db.dialect if db.dialect == "sqlite" else "postgres",
                                         tmp_path / "projections.db"):
        yield database


class Books:
    """Credit's answers and the projections' views of the same partners."""

    def __init__(self, svc: RunningService, feed: Feed, finance: dict[str, str], other: Database) -> None:
        self.svc, self.feed, self.finance, self.other = svc, feed, finance, other

    async def views(self, partners: list[str], aging_days: list[date]) -> dict[str, Any]:
        """Mirror credit's account streams into a fresh projections service; its 360s and agings."""
        async with projections(self.other) as mirror:
            mirror.svc.ctx.clock = self.svc.ctx.clock
            for partner_id in partners:
                await mirror.emit(f"partner-{partner_id}", [registered(partner_id)])
                for envelope in await self.svc.ctx.store.load(stream_id(partner_id)):
                    assert await mirror.svc.consumer.handle(envelope) == Outcome.APPLIED
            finance = await mirror.key("finance")
            client = mirror.svc.client
            return {
                "360": {p: ok(await client.get(f"/v1/views/partners/{p}", headers=finance))
                        for p in partners},
                "aging": {day: {row["partner_id"]: row for row in ok(await client.get(
                    "/v1/views/receivables/aging", headers=finance, params={"as_of": str(day)}))["items"]}
                          for day in aging_days},
            }

    async def statement_closing(self, partner_id: str) -> int:
        whole = {"from": str(days_ago(OPENED_DAYS_AGO + 30)), "to": str(TODAY)}
        body = ok(await self.svc.client.get(f"/v1/statements/{partner_id}", headers=self.finance,
                                            params=whole))
        assert body["opening_minor"] == 0
        return int(body["closing_minor"])


@pytest.fixture
async def books(svc: RunningService, feed: Feed, other_db: Database) -> Books:
    for partner_id, term in (("p1", 10), ("p2", 30), ("p3", 0)):
        await feed.register(partner_id, limit=100_000_000, term=term)
    return Books(svc, feed, await feed.key("finance"), other_db)


BUCKETS = ("current_minor", "d1_30_minor", "d31_60_minor", "d61_90_minor", "d90_plus_minor")


async def test_a_backdated_receipt_moves_paid_on_and_aging_alike(books: Books, feed: Feed) -> None:
    svc, finance = books.svc, books.finance
    await feed.order("o1", "p1", 2_500)
    await feed.dispatch("o1", {"SKU-1": 6}, on=days_ago(20))  # 1_500, due 10 days ago
    await feed.dispatch("o1", {"SKU-1": 4}, on=days_ago(4), complete=True)  # 1_000, due in 6 days
    ok(await pay(svc, finance, "p1", 1_500, bank_ref="ARRIVED-12-DAYS-AGO", received_on=days_ago(12)), 201)
    first, second = await invoices(svc, finance, "p1")
    assert (first["paid_on"], first["on_time"], second["open_minor"]) == (str(days_ago(12)), True, 1_000)
    figures = await account(svc, finance, "p1")
    views = await books.views(["p1"], [days_ago(13), days_ago(12), days_ago(11), TODAY])
    aging = views["aging"]
    assert aging[days_ago(13)]["p1"]["current_minor"] == 1_500  # before the money came
    assert "p1" not in aging[days_ago(12)] and "p1" not in aging[days_ago(11)]  # paid as of its date
    assert (aging[TODAY]["p1"]["current_minor"], aging[TODAY]["p1"]["total_minor"]) == (1_000, 1_000)
    assert figures["balance_minor"] == await books.statement_closing("p1") == 1_000
    assert views["360"]["p1"]["balance_minor"] == figures["balance_minor"]
    assert views["360"]["p1"]["overdue_minor"] == figures["overdue_minor"] == 0


async def _random_run(books: Books, feed: Feed, seed: int) -> None:
    """A bounded random sequence: every step is something finance, the warehouse or rebates does."""
    rng = random.Random(seed)
    svc, finance = books.svc, books.finance
    second_key = await feed.key("finance")
    shipped: dict[str, int] = {}  # order -> units dispatched and not yet returned
    placed: dict[str, str] = {}  # order -> partner
    left: dict[str, int] = {}  # order -> units not yet dispatched
    for step in range(40):
        partner_id = rng.choice(["p1", "p2", "p3"])
        kind = rng.choice(["order", "order", "dispatch", "dispatch", "dispatch", "pay", "pay", "return",
                           "write_off", "write_off", "settlement"])
        if kind == "order" or not placed:
            order_id = f"o{seed}-{step}"
            units = rng.randint(2, 8)
            await feed.place(order_id, partner_id, {"SKU-1": (units, rng.randint(1, 400) * 100 + 7)})
            await feed.confirm(order_id)
            placed[order_id], left[order_id], shipped[order_id] = partner_id, units, 0
        elif kind == "dispatch" and (open_orders := [o for o, n in left.items() if n]):
            order_id = rng.choice(open_orders)
            units = rng.randint(1, left[order_id])
            left[order_id] -= units
            shipped[order_id] += units
            await feed.dispatch(order_id, {"SKU-1": units}, on=days_ago(rng.randint(0, 25)),
                                complete=left[order_id] == 0)
        elif kind == "pay":
            ok(await pay(svc, finance, partner_id, rng.randint(1, 60_000), bank_ref=f"B{seed}-{step}",
                         received_on=days_ago(rng.randint(0, 30))), 201)
        elif kind == "return" and (returnable := [o for o, n in shipped.items() if n]):
            order_id = rng.choice(returnable)
            units = rng.randint(1, shipped[order_id])
            shipped[order_id] -= units
            await feed.return_received(order_id, {"SKU-1": units}, on=days_ago(rng.randint(0, 3)))
        elif kind == "write_off":
            candidates = [i for p in ("p1", "p2", "p3") for i in await invoices(svc, finance, p)
                          if i["status"] == "open"]
            if not candidates:
                continue
            invoice = rng.choice(candidates)
            amount = rng.randint(1, min(invoice["open_minor"], rng.choice([100, 1_000_000])))
            answer = ok(await svc.client.post(f"/v1/invoices/{invoice['id']}/write-off", headers=finance,
                                              json={"amount_minor": amount, "reason": f"step {step}"}))
            if answer["write_off"]["status"] == "proposed":
                ok(await svc.client.post(f"/v1/write-offs/{answer['write_off']['id']}/approve",
                                         headers=second_key))
        elif kind == "settlement":
            await feed.settlement_approved(partner_id, rng.randint(-20_000, 10_000),
                                           settlement_id=f"stl-{seed}-{step}")


@pytest.mark.parametrize("seed", [7, 2026])
async def test_after_a_random_run_every_figure_agrees(books: Books, feed: Feed, seed: int) -> None:
    await _random_run(books, feed, seed)
    partners = ["p1", "p2", "p3"]
    views = await books.views(partners, [TODAY])
    for partner_id in partners:
        figures = await account(books.svc, books.finance, partner_id)
        balance = figures["balance_minor"]
        assert balance == await books.statement_closing(partner_id), partner_id
        assert views["360"][partner_id]["balance_minor"] == balance, partner_id
        receivable = figures["open_invoices_minor"] + figures["open_debit_notes_minor"]
        aged = views["aging"][TODAY].get(partner_id) or dict.fromkeys((*BUCKETS, "on_account_minor"), 0)
        total = sum(aged[b] for b in BUCKETS) - aged["on_account_minor"]
        buckets, on_account = sum(aged[b] for b in BUCKETS), aged["on_account_minor"]
        assert aged.get("total_minor", 0) == total, partner_id
        money_on_account = figures["advance_minor"] + figures["reserved_minor"]
        assert total == balance and buckets == receivable, partner_id
        assert on_account == money_on_account == receivable - balance, partner_id
        assert views["360"][partner_id]["open_debit_notes_minor"] == figures["open_debit_notes_minor"]
        assert views["360"][partner_id]["overdue_minor"] == figures["overdue_minor"], partner_id
