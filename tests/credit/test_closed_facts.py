"""Facts that closed leave the account (``domain.account``): what is decided about them later is
decided from the documents, on both databases, with the same answers as when the account kept them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete

from libs.runtime.commands import read
from libs.store.schema import snapshots as snapshots_table
from services.credit.application.accounts import ACCOUNT, SNAPSHOTS
from tests.credit.support import Feed, account_events, ok, pay, types
from tests.service_support import RunningService


async def _forget_the_account(svc: RunningService) -> None:
    """No snapshot and nothing remembered: the next load folds the stream from its first event."""
    async with svc.ctx.db.transaction() as conn:
        await conn.execute(delete(snapshots_table))
    SNAPSHOTS.forget()


async def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    body = ok(response, status)
    assert body["type"].endswith(f"/{slug}"), body
    return dict(body)


async def test_what_closed_is_done_once_and_answered_as_before(svc: RunningService, feed: Feed) -> None:
    await feed.register("p1", limit=100_000, term=30)
    finance, checker = await feed.key("finance"), await feed.key("finance")
    await feed.order("o1", "p1", 3_000)
    await feed.dispatch("o1", {"SKU-1": 10}, dispatch_id="d1", complete=True)
    ok(await pay(svc, finance, "p1", 3_000), 201)  # o1 and its invoice are settled: both leave
    await feed.order("o2", "p1", 5_000)
    await feed.ship_all("o2")  # o2's invoice stays open, for now
    [paid, unpaid] = sorted(ok(await svc.client.get("/v1/invoices", headers=finance,
                                                    params={"partner_id": "p1"}))["items"],
                            key=lambda i: i["order_id"])
    assert (paid["status"], unpaid["status"]) == ("paid", "open")
    proposed = ok(await svc.client.post(f"/v1/invoices/{unpaid['id']}/write-off", headers=finance,
                                        json={"amount_minor": 2_000, "reason": "dispute"}))["write_off"]
    ok(await svc.client.post(f"/v1/write-offs/{proposed['id']}/reject", headers=checker,
                             json={"reason": "no"}))
    ok(await pay(svc, finance, "p1", 6_000), 201)  # o2 settled too, 1,000 left on the account

    for forget in (False, True):
        if forget:
            await _forget_the_account(svc)
        before = await types(svc, "p1")
        await feed.dispatch("o1", {"SKU-1": 10}, dispatch_id="d1", complete=True)  # redelivered
        await feed.confirm("o1")  # confirmed again
        await feed.return_received("o1", {"SKU-1": 1}, return_id="r1")
        await feed.return_received("o1", {"SKU-1": 1}, return_id="r1")
        await feed.settlement_approved("p1", -50, settlement_id="stl_debit")  # settled at once
        await feed.settlement_approved("p1", -50, settlement_id="stl_debit")
        await feed.settlement_approved("p1", 70, settlement_id="stl_credit")
        await feed.settlement_approved("p1", 70, settlement_id="stl_credit")
        added = (await types(svc, "p1"))[len(before):]
        assert added.count("InvoiceIssued") == 0 and added.count("FundsReviewPassed") == 0
        assert added.count("CreditNoteIssued") == (0 if forget else 2)
        assert added.count("DebitNoteIssued") == (0 if forget else 1)

        released = await _problem(await svc.client.post("/v1/holds/o1/release", headers=finance,
                                                        json={"reason": "x"}), 409, "order-not-held")
        assert "'o1' is approved" in released["detail"]
        closed = await _problem(await svc.client.post(f"/v1/invoices/{paid['id']}/write-off",
                                                      headers=finance,
                                                      json={"amount_minor": 1, "reason": "x"}),
                                409, "invoice-closed")
        assert "is paid" in closed["detail"]
        decided = await _problem(await svc.client.post(f"/v1/write-offs/{proposed['id']}/approve",
                                                       headers=checker), 409, "write-off-decided")
        assert decided["write_off_status"] == "rejected"

    await feed.cancel("o1", "p1")  # the order left the account: its review says cancelled all the same
    assert ok(await svc.client.get("/v1/holds/o1", headers=finance))["status"] == "cancelled"

    async with svc.ctx.db.read() as conn:
        loaded = await read(svc.ctx, conn, ACCOUNT, "p1")
    state = loaded.state
    kept = (state.invoices, state.orders, state.write_offs, state.payments, state.credit_notes,
            state.debit_notes)
    assert [len(facts) for facts in kept] == [0] * 6 and state.advance_minor > 0
    assert [t for t, _ in await account_events(svc, "p1")].count("InvoiceIssued") == 2
