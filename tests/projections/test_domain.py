"""Pure rules of the projections: given events, then read models and figures."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, timedelta

from libs.events import credit, orders, partners, rebates
from libs.events.base import EventMetadata
from libs.events.envelope import GENESIS_HASH, Envelope
from services.projections.domain import read_models, receivables
from services.projections.domain import rebates as rebate_rules
from services.projections.domain.aging import aging
from services.projections.domain.chain import ChainWalk
from services.projections.domain.partner_view import partner_360
from services.projections.domain.publishers import EVENT_TYPES, PUBLISHER_OF
from services.projections.domain.sales import sales
from services.projections.domain.timeline import causal_order
from tests.projections.support import credit_note, invoice, placed, registered

AS_OF = date(2025, 6, 30)


def fold_invoice(*events, occurred_on: date = AS_OF) -> dict:
    doc = receivables.blank_invoice("i1")
    for event in events:
        doc = receivables.evolve_invoice(doc, event, event_id=str(uuid.uuid4()),
                                         occurred_on=occurred_on)
    return doc


def issued(invoice_id: str, due_in: int, total: int, partner_id: str = "p1") -> dict:
    event = invoice(invoice_id, "o1", partner_id, issued_on=date(2025, 1, 1),
                    due_on=AS_OF + timedelta(days=due_in), lines=[("A", 1, total)])
    return receivables.evolve_invoice(receivables.blank_invoice(invoice_id), event,
                                      event_id="e", occurred_on=date(2025, 1, 1))


def test_every_published_type_has_its_publisher() -> None:
    assert PUBLISHER_OF["PartnerRegistered"] == "partners"
    assert PUBLISHER_OF["OrderPlaced"] == "orders"
    assert PUBLISHER_OF["InvoiceIssued"] == "credit"
    assert PUBLISHER_OF["ShipmentDispatched"] == "delivery"
    assert PUBLISHER_OF["RebateAccrued"] == "rebates"
    assert PUBLISHER_OF["DebitNoteIssued"] == PUBLISHER_OF["WriteOffProposed"] == "credit"
    assert PUBLISHER_OF["ReturnInspected"] == PUBLISHER_OF["ReturnGoodsDispatched"] == "delivery"
    assert PUBLISHER_OF["CoopClaimApproved"] == "rebates"
    assert PUBLISHER_OF["PartnerParentChanged"] == "partners"
    assert len(EVENT_TYPES) == 77
    assert PUBLISHER_OF["DealRegistered"] == PUBLISHER_OF["PriceChangeNotified"] == "orders"
    assert PUBLISHER_OF["CreditNoteApplied"] == "credit"


def test_aging_buckets_at_the_day_boundaries() -> None:
    amounts = {-5: 256, 0: 1, 1: 2, 30: 4, 31: 8, 60: 16, 61: 32, 90: 64, 91: 128}
    docs = [issued(f"i{days}", -days, amount) for days, amount in amounts.items()]
    [row] = aging(docs, AS_OF)
    assert row == {"partner_id": "p1", "currency": "CNY", "current_minor": 257, "d1_30_minor": 6,
                   "d31_60_minor": 24, "d61_90_minor": 96, "d90_plus_minor": 128,
                   "on_account_minor": 0, "total_minor": 511}


def test_open_amount_follows_settlements_in_time() -> None:
    base = issued("i1", -10, 1000)
    paid = receivables.evolve_invoice(base, credit.PaymentApplied(
        payment_id="pay1", invoice_id="i1", partner_id="p1", amount_minor=300,
        applied_on=date(2025, 6, 1)), event_id="a", occurred_on=date(2025, 6, 1))
    advanced = receivables.evolve_invoice(paid, credit.AdvanceApplied(
        partner_id="p1", invoice_id="i1", amount_minor=200), event_id="b",
        occurred_on=date(2025, 7, 5))
    assert receivables.open_minor(advanced, date(2025, 5, 31)) == 1000
    assert receivables.open_minor(advanced, date(2025, 6, 1)) == 700
    assert receivables.open_minor(advanced) == 500
    again = receivables.evolve_invoice(advanced, credit.AdvanceApplied(
        partner_id="p1", invoice_id="i1", amount_minor=200), event_id="b",
        occurred_on=date(2025, 7, 5))
    assert receivables.open_minor(again) == 500, "a redelivered settlement counts once"
    assert receivables.open_minor(advanced, date(2024, 12, 31)) == 0, "not issued yet"


def test_a_credit_note_applied_settles_an_invoice_for_aging_like_an_advance() -> None:
    base = issued("i1", -10, 1000)
    noted = receivables.evolve_invoice(base, credit.CreditNoteApplied(
        credit_note_id="cn1", invoice_id="i1", partner_id="p1", amount_minor=600,
        applied_on=date(2025, 6, 1)), event_id="n", occurred_on=date(2025, 6, 3))
    advanced = receivables.evolve_invoice(base, credit.AdvanceApplied(
        partner_id="p1", invoice_id="i1", amount_minor=600), event_id="n",
        occurred_on=date(2025, 6, 1))
    assert receivables.open_minor(noted, date(2025, 5, 31)) == 1000
    assert receivables.open_minor(noted, date(2025, 6, 1)) == 400, "dated by applied_on"
    assert receivables.open_minor(noted) == receivables.open_minor(advanced) == 400
    assert aging([noted], AS_OF) == aging([advanced], AS_OF) == [
        {"partner_id": "p1", "currency": "CNY", "current_minor": 0, "d1_30_minor": 400, "d31_60_minor": 0,
         "d61_90_minor": 0, "d90_plus_minor": 0, "on_account_minor": 0, "total_minor": 400}]
    again = receivables.evolve_invoice(noted, credit.CreditNoteApplied(
        credit_note_id="cn1", invoice_id="i1", partner_id="p1", amount_minor=600,
        applied_on=date(2025, 6, 1)), event_id="n", occurred_on=date(2025, 6, 3))
    assert receivables.open_minor(again) == 400, "a redelivered settlement counts once"
    partner = read_models.evolve_partner(read_models.blank_partner("p1"), registered("p1"))
    view = partner_360(partner, orders=[], invoices=[noted],
                       credit_notes=[credit_note("cn1", "p1", 600, kind="rebate").payload()],
                       payments=[], accruals=[], settlements=[], today=AS_OF)
    assert (view["open_invoices_minor"], view["overdue_minor"], view["balance_minor"]) == (400, 400, 400)


def test_paid_invoices_are_closed_from_that_day_written_off_ones_when_nothing_is_left() -> None:
    closed = receivables.evolve_invoice(issued("i1", 0, 1000), credit.InvoicePaid(
        invoice_id="i1", partner_id="p1", paid_on=date(2025, 7, 1), on_time=False),
        event_id="c", occurred_on=date(2025, 7, 1))
    assert receivables.open_minor(closed, AS_OF) == 1000
    assert receivables.open_minor(closed, date(2025, 7, 1)) == 0
    assert receivables.status_of(closed) == "paid"
    partly = receivables.evolve_invoice(issued("i2", 0, 1000), credit.InvoiceWrittenOff(
        invoice_id="i2", partner_id="p1", amount_minor=7, reason="residue", written_off_by="f"),
        event_id="w1", occurred_on=AS_OF)
    assert (receivables.open_minor(partly, AS_OF), receivables.status_of(partly)) == (993, "open")
    written = receivables.evolve_invoice(partly, credit.InvoiceWrittenOff(
        invoice_id="i2", partner_id="p1", amount_minor=993, reason="residue", written_off_by="f"),
        event_id="w2", occurred_on=AS_OF + timedelta(days=1))
    assert receivables.open_minor(written, AS_OF) == 993
    assert receivables.open_minor(written) == 0
    assert (receivables.status_of(written), written["written_off_minor"]) == ("written_off", 1000)


def test_a_settlement_before_its_invoice_still_counts() -> None:
    doc = fold_invoice(
        credit.PaymentApplied(payment_id="pay", invoice_id="i1", partner_id="p1", amount_minor=400,
                              applied_on=AS_OF),
        invoice("i1", "o1", "p1", issued_on=AS_OF, due_on=AS_OF, lines=[("A", 1, 1000)]))
    assert receivables.open_minor(doc) == 600


def test_partner_and_order_read_models_follow_status_after() -> None:
    doc = read_models.blank_partner("p1")
    for event in (registered("p1"), partners.AgreementSigned(
            partner_id="p1", agreement_id="a", kind="trial", starts_on=AS_OF, ends_on=AS_OF,
            status_after="trial"), partners.PartnerTierChanged(partner_id="p1", from_tier="gold",
                                                              to_tier="platinum"),
            partners.PartnerSuspended(partner_id="p1", reason="x")):
        doc = read_models.evolve_partner(doc, event)
    assert (doc["status"], doc["tier"], doc["region"]) == ("suspended", "platinum", "east")
    order = read_models.blank_order("o1")
    order = read_models.evolve_order(order, credit.FundsReviewPassed(
        order_id="o1", partner_id="p1", amount_minor=900, how="within_limit"),
        occurred_at="t", correlation_id="c")
    for event in (placed("o1", "p1", [("A", 1, 900)]), orders.OrderConfirmed(order_id="o1"),
                  orders.OrderApproved(order_id="o1")):
        order = read_models.evolve_order(order, event, occurred_at="t", correlation_id="c")
    assert (order["status"], order["partner_id"], order["funds_passed_minor"]) == ("approved", "p1", 900)


def test_sales_grouped_net_of_return_credit_notes() -> None:
    def doc(event):
        return receivables.evolve_invoice(receivables.blank_invoice(event.invoice_id), event,
                                          event_id="e", occurred_on=AS_OF)

    invoices = [
        doc(invoice("i1", "o1", "p1", issued_on=date(2025, 1, 5), due_on=AS_OF,
                    lines=[("A", 2, 100), ("B", 1, 50)], region="east", tier="gold")),
        doc(invoice("i2", "o1", "p1", issued_on=date(2025, 2, 5), due_on=AS_OF,
                    lines=[("A", 1, 100)], region="east", tier="gold")),
        doc(invoice("i3", "o2", "p2", issued_on=date(2025, 2, 9), due_on=AS_OF,
                    lines=[("B", 4, 50)], region="west", tier="silver")),
    ]
    notes = [credit_note("c1", "p1", 100, order_id="o1", issued_on=date(2025, 2, 10),
                         lines=[("A", 1, 100)]).payload(),
             credit_note("c2", "p2", 999, kind="rebate", issued_on=date(2025, 2, 10)).payload()]
    by_region = sales(invoices, notes, group_by="region")
    assert [(r["key"], r["amount_minor"], r["orders"]) for r in by_region] == [
        ("east", 250, 1), ("west", 200, 1)]
    by_sku = sales(invoices, notes, group_by="sku")
    assert [(r["key"], r["amount_minor"]) for r in by_sku] == [("A", 200), ("B", 250)]
    by_month = sales(invoices, notes, group_by="month", start=date(2025, 2, 1))
    assert [(r["key"], r["amount_minor"], r["orders"]) for r in by_month] == [("2025-02", 200, 2)]
    by_tier = sales(invoices, notes, group_by="tier", end=date(2025, 1, 31))
    assert [(r["key"], r["amount_minor"]) for r in by_tier] == [("gold", 250)]


def test_partner_360_figures() -> None:
    partner = read_models.evolve_partner(read_models.blank_partner("p1"), registered("p1"))
    order = read_models.blank_order("o1") | {"partner_id": "p1", "status": "partially_shipped",
                                             "funds_passed_minor": 10_000, "funds_how": "within_limit"}
    prepaid = order | {"order_id": "o2", "funds_how": "prepaid", "status": "approved"}
    cancelled = order | {"order_id": "o3", "status": "cancelled"}
    inv = issued("i1", -40, 6000) | {"order_id": "o1", "settlements": {
        "x": {"kind": "payment", "on": "2025-06-01", "amount_minor": 2500}}}
    view = partner_360(
        partner, orders=[order, prepaid, cancelled], invoices=[inv],
        credit_notes=[credit_note("c1", "p1", 1000).payload(),
                      credit_note("c2", "p1", 300, kind="rebate").payload()],
        payments=[{"amount_minor": 4000}],
        accruals=[{"accrued_minor": 450}], settlements=[
            {"payout_minor": 300, "status": "approved"}, {"payout_minor": 50, "status": "proposed"}],
        today=AS_OF)
    assert view["orders"] == {"count": 3, "by_status": {
        "approved": 1, "cancelled": 1, "partially_shipped": 1}}
    assert view["sales_minor"] == 5000
    assert view["exposure_minor"] == 3500 + 4000 + 10_000  # the approved prepaid order counts too
    assert view["balance_minor"] == 6000 - 4000 - 1300
    assert view["overdue_minor"] == 3500
    assert view["rebates"] == {"accrued_minor": 450, "settled_minor": 300}


def test_the_latest_accrual_wins_whatever_the_arrival_order() -> None:
    early = rebates.RebateAccrued(program_id="r", partner_id="p1", source={
        "kind": "invoice", "ref": "i", "amount_minor": 1}, basis_minor=1, accrued_minor=10,
        tier_rate_bp=1)
    late = early.model_copy(update={"accrued_minor": 30})
    doc = rebate_rules.blank_accrual("r", "p1")
    doc = rebate_rules.evolve_accrual(doc, late, stamp=[2, "2025-01-02"])
    doc = rebate_rules.evolve_accrual(doc, early, stamp=[1, "2025-01-01"])
    assert doc["accrued_minor"] == 30


def _envelope(event_id: uuid.UUID, causation: uuid.UUID | None, at: str) -> Envelope:
    meta = EventMetadata(actor="t")
    return Envelope(event_id=event_id, event_type="X", schema_version=1, stream_id="s",
                    stream_type="s", stream_version=1, occurred_at=at,
                    correlation_id=meta.correlation_id, causation_id=causation, actor="t", data="{}")


def test_causal_order_puts_parents_first_despite_clocks_and_deduplicates() -> None:
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    events = [
        _envelope(c, b, "2025-01-01T00:00:01.000000Z"),  # child of b, clock earlier than b
        _envelope(b, a, "2025-01-01T00:00:05.000000Z"),
        _envelope(a, None, "2025-01-01T00:00:03.000000Z"),
        _envelope(d, uuid.uuid4(), "2025-01-01T00:00:04.000000Z"),  # cause outside the set
        _envelope(a, None, "2025-01-01T00:00:03.000000Z"),
    ]
    ordered = causal_order(events, event_id=lambda e: e.event_id,
                           causation_id=lambda e: e.causation_id,
                           key=lambda e: (e.occurred_at, "", 0, 0))
    assert [e.event_id for e in ordered] == [a, d, b, c]


def test_chain_walk_names_altered_and_removed_rows() -> None:
    first = _envelope(uuid.uuid4(), None, "2025-01-01T00:00:00.000000Z")
    first = replace(first, stream_hash=first.chained_hash(GENESIS_HASH))
    second = replace(first, event_id=uuid.uuid4(), stream_version=2)
    second = replace(second, stream_hash=second.chained_hash(first.stream_hash))
    third = replace(second, event_id=uuid.uuid4(), stream_version=3)
    third = replace(third, stream_hash=third.chained_hash(second.stream_hash))
    good = ChainWalk()
    for seq, envelope in enumerate((first, second, third), start=1):
        good.feed(seq, "orders", envelope)
    verdict = good.as_dict()
    assert {k: verdict[k] for k in ("ok", "checked", "first_bad", "mode", "links")} == {
        "ok": True, "checked": 3, "first_bad": None, "mode": "unkeyed", "links": {"unkeyed": 3}}
    assert "no audit key is configured" in verdict["warnings"][0]
    bad = ChainWalk()
    bad.feed(1, "orders", first)
    bad.feed(2, "orders", replace(second, data='{"x":1}'))
    bad.feed(3, "orders", third)
    bad.feed(4, "credit", replace(first, stream_version=2))
    report = bad.as_dict()
    assert (report["ok"], report["first_bad"]) == (False, 2)
    assert [(p["received_seq"], p["kind"]) for p in report["problems"]] == [
        (2, "altered"), (4, "removed")]
