"""Account snapshots are only a cache: decoded and folded on, they equal the fold from the first event;
deleting them, or finding one of another shape, changes no answer of the API (both databases).

The account keeps only what is live (``evolve``): every decision on it, given what the documents
say about closed facts, is the decision on the account that keeps every fact (``apply``), and its
snapshot does not grow with the account's history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from libs.events import credit as ev
from libs.events.base import DomainEvent
from libs.events.codec import canonical_json
from libs.runtime.aggregate import load
from libs.store.schema import snapshots as snapshots_table
from services.credit.application.accounts import SNAPSHOTS
from services.credit.domain.account import Account, evolve, fold, fold_live, stream_id
from services.credit.domain.funds import decide_funds_review, decide_release, decide_terms
from services.credit.domain.invoicing import decide_invoice
from services.credit.domain.position import open_invoices, position, queue
from services.credit.domain.receipts import decide_credit_note, decide_debit_note, decide_payment
from services.credit.domain.snapshot import decode, encode
from services.credit.domain.snapshot import size as snapshot_size
from services.credit.domain.write_offs import (
    decide_write_off,
    decide_write_off_approval,
    decide_write_off_rejection,
)
from tests.credit.given import TODAY, line, opened
from tests.credit.support import Feed, ok, pay
from tests.service_support import RunningService

Step = tuple[str, int]
STEPS = st.lists(st.tuples(st.sampled_from(
    ["review", "review", "invoice", "invoice", "pay", "note", "write_off", "release", "terms", "statement",
     "debit", "approve"]),
    st.integers(1, 60)), max_size=60)


def _history(steps: list[Step]) -> list[DomainEvent]:
    """A realistic account stream: every event decided by credit's own rules on the state before it,
    the same on the account that keeps every fact and on the one a load gives (closed facts looked
    up in the full account, as the application layer looks them up in the documents)."""
    state = fold(Account(), [opened(limit=3_000)])
    live = fold_live(Account(), [opened(limit=3_000)])
    events: list[DomainEvent] = [opened(limit=3_000)]
    for n, (kind, size) in enumerate(steps):
        decided = _decided(state, n, kind, size)
        assert _decided(live, n, kind, size, known=state) == decided
        state = fold(state, decided)
        live = fold_live(live, decided)
        events += decided
    return events


def _decided(state: Account, n: int, kind: str, size: int, known: Account | None = None
             ) -> list[DomainEvent]:
    """Step ``n``'s decision on ``state``; ``known`` (the full account) answers what a live one
    no longer holds: the invoice of a proposed write-off, whether a source was credited already."""
    amount, day = size * 100, TODAY + timedelta(days=n % 40)
    approved = [o for o in state.orders.values()
                if o.status == "approved" and o.invoiced_minor < o.total_minor]
    if kind == "review":
        return decide_funds_review(state, f"o{n}", amount, day)
    if kind == "invoice" and approved:
        order = min(approved, key=lambda o: o.seq)
        part = min(amount, order.total_minor - order.invoiced_minor)
        return decide_invoice(state, invoice_id=f"i{n}", order_id=order.order_id, dispatch_id=f"d{n}",
                              lines=[line(1, part)], issued_on=day, region="east", tier="A", today=day)
    if kind == "pay":
        return decide_payment(state, payment_id=f"p{n}", amount=amount, currency=state.currency,
                              bank_ref=f"b{n}", received_on=day, allocations=None, today=day)
    if kind == "note":
        source = f"s{size % 7}"
        return decide_credit_note(state, credit_note_id=f"c{n}", amount=amount, reason="r",
                                  source_kind="rebate", source_ref=source, issued_on=day, today=day,
                                  credited=known is not None and any(
                                      c.source_ref == source for c in known.credit_notes.values()))
    pending = {w.invoice_id for w in state.write_offs.values() if w.status == "proposed"}
    unclaimed = [i for i in open_invoices(state) if i.invoice_id not in pending]
    if kind == "write_off" and unclaimed:
        invoice = unclaimed[0]
        return decide_write_off(state, invoice.invoice_id, min(amount, invoice.open_minor), "w", "f",
                                day, write_off_id=f"w{n}", threshold=1_000)
    if kind == "debit":
        return decide_debit_note(state, debit_note_id=f"dn{n}", amount=amount, reason="r",
                                 source_ref=f"s{n}", issued_on=day)
    if kind == "approve" and (proposed := [w for w in state.write_offs.values() if w.status == "proposed"]):
        invoice = (known or state).invoices[proposed[0].invoice_id]
        if invoice.status != "open" or invoice.open_minor < proposed[0].amount_minor:
            return decide_write_off_rejection(state, proposed[0].write_off_id, "stale", "g", day)
        return decide_write_off_approval(state, proposed[0].write_off_id, "g", day, threshold=1_000)
    if kind == "release" and queue(state):
        return decide_release(state, queue(state)[0].order_id, "ok", "finance")
    if kind == "terms":
        return decide_terms(state, "credit", 1_000 * size, 30, day)
    if kind == "statement":
        return [ev.StatementConfirmed(partner_id=state.partner_id, to=day,
                                      closing_minor=position(state, day).balance_minor)]
    return []


@settings(max_examples=60, deadline=None)
@given(STEPS, st.integers(0, 10_000))
def test_a_snapshot_at_any_version_folded_on_equals_the_fold_from_the_first_event(
    steps: list[Step], cut_at: int,
) -> None:
    events = _history(steps)
    cut = cut_at % (len(events) + 1)
    whole = fold_live(Account(), events)
    at_cut = fold_live(Account(), events[:cut])

    restored = decode(encode(at_cut))
    assert restored == at_cut
    assert encode(restored) == encode(at_cut)  # deterministic: the same account, the same bytes
    assert fold_live(restored, events[cut:]) == whole
    assert position(fold_live(restored, events[cut:]), TODAY) == position(whole, TODAY)
    full = fold(Account(), events)  # every fact kept: the same position, the live facts the same
    assert decode(encode(full)) == full
    assert position(full, TODAY) == position(whole, TODAY)
    assert (set(whole.invoices), set(whole.debit_notes), set(whole.orders), whole.advance_minor) == (
        full.open_invoice_ids, full.open_debit_note_ids, full.live_order_ids, full.advance_minor)
    assert all(whole.invoices[i] == full.invoices[i] for i in whole.invoices)
    assert all(whole.orders[o] == full.orders[o] for o in whole.orders)
    assert set(whole.write_offs) == {w.write_off_id for w in full.write_offs.values()
                                             if w.status == "proposed"}
    assert (len(whole.payments), len(whole.credit_notes)) == (0, 0)
    assert (full.open_invoice_ids, full.open_debit_note_ids, full.live_order_ids) == (
        {i.invoice_id for i in full.invoices.values() if i.status == "open" and i.open_minor > 0},
        {n.debit_note_id for n in full.debit_notes.values() if n.open_minor > 0},
        {o.order_id for o in full.orders.values()
         if o.status in ("held", "awaiting_prepayment")
         or (o.status == "approved" and o.invoiced_minor < o.total_minor)})


def _settled(orders: int) -> Account:
    """An account after ``orders`` orders, each reviewed, invoiced and paid, as a load gives it."""
    events = [opened(limit=10**9)]
    state = fold_live(Account(), events)
    for n in range(orders):
        decided = decide_funds_review(state, f"o{n}", 1_000, TODAY)
        state = fold_live(state, decided)
        decided = decide_invoice(state, invoice_id=f"i{n}", order_id=f"o{n}", dispatch_id=f"d{n}",
                                 lines=[line(1, 1_000)], issued_on=TODAY, region="east", tier="A",
                                 today=TODAY)
        state = fold_live(state, decided)
        state = fold_live(state, decide_payment(state, payment_id=f"p{n}", amount=1_000, currency="CNY",
                                                bank_ref=f"b{n}", received_on=TODAY, allocations=None,
                                                today=TODAY))
    return state


def test_the_loaded_account_and_its_snapshot_do_not_grow_with_settled_history() -> None:
    few, many = _settled(10), _settled(90)  # counters of two digits either way
    assert (few.next_seq, many.next_seq, many.invoices_issued) == (11, 91, 90)
    assert snapshot_size(few) == snapshot_size(many) == 0
    assert len(canonical_json(encode(few))) == len(canonical_json(encode(many)))


def test_evolve_leaves_the_state_it_was_given_unchanged() -> None:
    events = _history([("review", 5), ("invoice", 5), ("pay", 2), ("note", 1), ("review", 50)])
    before = fold(Account(), events[:3])
    snapshot = encode(before)
    for event in events[3:]:
        evolve(before, event)
    assert encode(before) == snapshot


async def _answers(svc: RunningService, finance: dict[str, str]) -> list[Any]:
    return [ok(await svc.client.get(path, headers=finance, params=params)) for path, params in [
        ("/v1/accounts/p1", {}), ("/v1/invoices", {"partner_id": "p1"}),
        ("/v1/payments", {"partner_id": "p1"}),
        ("/v1/statements/p1", {"from": str(TODAY - timedelta(days=30)), "to": str(TODAY)}),
        ("/v1/holds", {"partner_id": "p1"}),
    ]]


async def _snapshot_version(svc: RunningService) -> int | None:
    async with svc.ctx.db.read() as conn:
        return (await conn.execute(select(snapshots_table.c.version)
                                   .where(snapshots_table.c.stream_id == stream_id("p1")))).scalar()


async def _busy_account(svc: RunningService, feed: Feed, finance: dict[str, str]) -> None:
    await feed.register("p1", limit=20_000, term=30)
    for n in range(8):
        await feed.order(f"o{n}", "p1", 3_000 + 100 * n)
        if n % 3 != 2:
            await feed.ship_all(f"o{n}")
        if n % 2:
            ok(await pay(svc, finance, "p1", 2_500), 201)
    await feed.cancel("o7", "p1")


async def test_deleting_every_snapshot_changes_no_response(svc: RunningService, feed: Feed,
                                                           monkeypatch: Any) -> None:
    monkeypatch.setattr(SNAPSHOTS, "every", 4)
    monkeypatch.setattr(SNAPSHOTS, "size", None)
    finance = await feed.key("finance")
    await _busy_account(svc, feed, finance)
    assert (await _snapshot_version(svc) or 0) > 10  # the account really was loaded from snapshots
    before = await _answers(svc, finance)

    async with svc.ctx.db.transaction() as conn:
        await conn.execute(delete(snapshots_table))
    SNAPSHOTS.forget()
    assert await _answers(svc, finance) == before

    paid = ok(await pay(svc, finance, "p1", 1_000, bank_ref="AFTER"), 201)  # decided without any snapshot
    async with svc.ctx.db.read() as conn:
        from_scratch, _ = await load(conn, svc.ctx.store, svc.ctx.registry, stream_id("p1"),
                                     Account(partner_id="p1"), evolve)
    assert paid["account"]["balance_minor"] == position(from_scratch, TODAY).balance_minor
    assert await _snapshot_version(svc) is not None  # and the save took a new one


async def test_a_snapshot_of_another_shape_is_ignored(svc: RunningService, feed: Feed,
                                                      monkeypatch: Any) -> None:
    monkeypatch.setattr(SNAPSHOTS, "every", 4)
    monkeypatch.setattr(SNAPSHOTS, "size", None)
    finance = await feed.key("finance")
    await _busy_account(svc, feed, finance)
    before = await _answers(svc, finance)
    wrong = encode(Account(partner_id="p1", opened=True, kind="credit", credit_limit_minor=1,
                           advance_minor=10**9))
    async with svc.ctx.db.transaction() as conn:  # as if written by an older shape of the account
        await conn.execute(update(snapshots_table).values(fingerprint="0" * 64,
                                                          state=canonical_json(wrong).decode()))
    SNAPSHOTS.forget()
    assert await _answers(svc, finance) == before
