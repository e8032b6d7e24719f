"""What ``o2c chaos`` holds the system to once the faults stop.

- **nothing lost**: every acknowledged (201) order is readable under its id;
- **nothing doubled**: one order per Idempotency-Key (and per ``partner_ref``), one
  shipment per order, one invoice per dispatch, one payment per ``bank_ref``, rebate
  bases equal to what was invoiced (accruals not counted twice);
- **nothing stuck**: every order reaches ``shipped`` within the bound;
- **one truth**: per partner, the credit account's balance, the statement's closing
  balance, the projections' partner 360 and the aging total agree, and agree with
  the invoices and payments themselves;
- **untampered**: the cross-service ``GET /v1/audit/verify`` is ok.

Each check returns a list of findings (empty: it holds), so a report names every
broken promise with its evidence instead of stopping at the first.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from o2c.chaos_load import Api, GaveUp, Tally, World
from o2c.scenario import expect

FINAL_STATUS = "shipped"
_SHOWN = 10  # findings listed per check (the count is always complete)


@dataclass
class Books:
    """Everything the checks compare, read once from the services."""

    orders: dict[str, list[dict[str, Any]]]  # partner id -> its orders
    shipments: list[dict[str, Any]]
    invoices: list[dict[str, Any]]
    payments: list[dict[str, Any]]

    @staticmethod
    def read(admin: Api, finance: Api, world: World, until: float) -> Books:
        return Books(
            orders={p: list(admin.pages("orders", "/v1/orders", {"partner_id": p}, until))
                    for p in world.partners},
            shipments=list(admin.pages("delivery", "/v1/shipments", {}, until)),
            invoices=list(finance.pages("credit", "/v1/invoices", {}, until)),
            payments=list(finance.pages("credit", "/v1/payments", {}, until)),
        )

    def all_orders(self) -> list[dict[str, Any]]:
        return [order for orders in self.orders.values() for order in orders]


def _first(findings: list[str]) -> list[str]:
    return findings if len(findings) <= _SHOWN else [*findings[:_SHOWN], f"... {len(findings) - _SHOWN} more"]


def lost_orders(admin: Api, tally: Tally, until: float) -> list[str]:
    """Every acknowledged order answers ``GET /v1/orders/{id}`` with its id and total."""
    findings = []
    for key, placed in tally.acknowledged.items():
        response = admin.send("orders", "GET", f"/v1/orders/{placed['id']}", until=until)
        if response.status_code != 200:
            findings.append(f"{placed['id']} (key {key}) answers {response.status_code}")
        elif response.json()["total_minor"] != placed["total_minor"]:
            findings.append(f"{placed['id']} total changed: {placed['total_minor']} -> "
                            f"{response.json()['total_minor']}")
    return findings


def doubled(books: Books, tally: Tally) -> list[str]:
    """One order per key and per ``partner_ref``, one shipment per order, one invoice per dispatch
    (for its whole amount), one payment per ``bank_ref``."""
    findings = [f"key {key} answered with {len(ids)} order ids: {sorted(ids)}"
                for key, ids in tally.ids_by_key.items() if len(ids) > 1]
    partner_refs = Counter(order["partner_ref"] for order in books.all_orders())
    findings += [f"{count} orders with partner_ref {ref}" for ref, count in partner_refs.items() if count > 1]
    per_order = Counter(shipment["order_id"] for shipment in books.shipments)
    findings += [f"{count} shipments for order {order}" for order, count in per_order.items() if count > 1]
    dispatches = {shipment["order_id"]: len(shipment["dispatches"]) for shipment in books.shipments}
    invoices = defaultdict(list)
    for invoice in books.invoices:
        invoices[invoice["order_id"]].append(invoice)
    totals = {order["id"]: order["total_minor"] for order in books.all_orders()}
    for order_id, issued in invoices.items():
        if len(issued) != dispatches.get(order_id, 0):
            findings.append(f"order {order_id}: {len(issued)} invoices for {dispatches.get(order_id, 0)} "
                            "dispatches")
        if sum(i["total_minor"] for i in issued) > totals.get(order_id, 0):
            findings.append(f"order {order_id}: invoiced {sum(i['total_minor'] for i in issued)} of "
                            f"{totals.get(order_id)}")
    bank_refs = Counter(payment["bank_ref"] for payment in books.payments)
    findings += [f"{count} payments with bank_ref {ref}" for ref, count in bank_refs.items() if count > 1]
    findings += [f"payment {ref} was acknowledged but is not recorded" for ref in tally.paid
                 if ref not in bank_refs]
    return findings


def stuck(books: Books, tally: Tally) -> list[str]:
    """Every order (acknowledged or not) reached ``shipped``; every acknowledged one exists."""
    status = {order["id"]: order["status"] for order in books.all_orders()}
    findings = [f"{order_id} is {state}" for order_id, state in status.items() if state != FINAL_STATUS]
    findings += [f"acknowledged {placed['id']} missing from the partner's order list"
                 for placed in tally.acknowledged.values() if placed["id"] not in status]
    return findings


def invoices_unsettled(books: Books) -> list[str]:
    """Every shipped order is invoiced in full and every invoice paid (the load pays them all)."""
    findings = [f"invoice {i['id']} of order {i['order_id']} is {i['status']}" for i in books.invoices
                if i["status"] != "paid"]
    invoiced = Counter[str]()
    for invoice in books.invoices:
        invoiced[invoice["order_id"]] += invoice["total_minor"]
    findings += [f"order {o['id']} ({o['status']}) invoiced {invoiced[o['id']]} of {o['total_minor']}"
                 for o in books.all_orders() if o["status"] == FINAL_STATUS
                 and invoiced[o["id"]] != o["total_minor"]]
    return findings


def disagreements(admin: Api, finance: Api, books: Books, world: World, until: float) -> list[str]:
    """Per partner: account, statement, partner 360, aging, accrual and the documents agree."""
    findings: list[str] = []
    aging = expect(finance.send("projections", "GET", "/v1/views/receivables/aging", until=until), 200)
    aged = {row["partner_id"]: row["total_minor"] for row in aging["items"]}
    for partner_id in world.partners:
        invoiced = sum(i["total_minor"] for i in books.invoices if i["partner_id"] == partner_id)
        received = sum(p["amount_minor"] for p in books.payments if p["partner_id"] == partner_id)
        account = expect(finance.send("credit", "GET", f"/v1/accounts/{partner_id}", until=until), 200)
        statement = expect(finance.send("credit", "GET", f"/v1/statements/{partner_id}", until=until,
                                        params={"from": "2000-01-01"}), 200)
        view = expect(admin.send("projections", "GET", f"/v1/views/partners/{partner_id}", until=until), 200)
        accruals = expect(finance.send("rebates", "GET", "/v1/accruals", until=until, params={
            "partner_id": partner_id, "program_id": world.program_id}), 200)["items"]
        figures = {
            "documents (invoiced - received)": invoiced - received,
            "account balance": account["balance_minor"],
            "statement closing": statement["closing_minor"],
            "partner 360 balance": view["balance_minor"],
            "aging total": aged.get(partner_id, 0),
        }
        if len(set(figures.values())) > 1:
            findings.append(f"partner {partner_id} balances disagree: {figures}")
        if view["invoiced_minor"] != invoiced or view["received_minor"] != received:
            findings.append(f"partner {partner_id} 360 invoiced/received {view['invoiced_minor']}/"
                            f"{view['received_minor']}, documents {invoiced}/{received}")
        basis = accruals[0]["basis_minor"] if accruals else 0
        if basis != invoiced:
            findings.append(f"partner {partner_id} rebate basis {basis}, invoiced {invoiced}")
    return findings


def audit_verify(admin: Api, until: float) -> list[str]:
    """The cross-service verification (every store's chains and the archive) is ok."""
    report = expect(admin.send("projections", "GET", "/v1/audit/verify", until=until), 200)
    return [] if report["ok"] else [f"verify: first bad {report.get('first_bad')}; "
                                    f"{ {n: r for n, r in report['services'].items() if not r['ok']} }"]


def check_all(admin: Api, finance: Api, world: World, tally: Tally, agree_within_s: float) -> dict[str, Any]:
    """Every check, the cross-service agreement given ``agree_within_s`` to converge."""
    until = time.monotonic() + agree_within_s
    try:
        books = Books.read(admin, finance, world, until)
        agreement = first = disagreements(admin, finance, books, world, until)
        while agreement and time.monotonic() < until:  # projections and rebates follow by events
            time.sleep(0.5)
            books = Books.read(admin, finance, world, until)
            agreement = disagreements(admin, finance, books, world, until)
        results = {
            "lost": lost_orders(admin, tally, until + 30),
            "doubled": doubled(books, tally),
            "stuck": stuck(books, tally),
            "unsettled": invoices_unsettled(books),
            "disagree": agreement,
            "verify": audit_verify(admin, until + 30),
        }
    except GaveUp as error:
        return {"unreachable": {"count": 1, "examples": [str(error)]}}
    checked = {name: {"count": len(found), "examples": _first(found)} for name, found in results.items()}
    if agreement:  # evidence: did the views move at all while we waited?
        checked["disagree"]["unchanged_while_waiting"] = agreement == first
    return checked
