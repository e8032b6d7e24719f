"""Access control over HTTP, read from API.md's tables.

- Every route that takes an id, called with another partner's key, answers 404.
- Each role is refused (403) what API.md does not give it.
- A revoked key is refused by every service within 5 seconds.
- Unknown JSON fields answer 422; no bad input answers 500.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import pytest

from tests.e2e.conftest import (
    System,
    body,
    dispatch,
    ensure_product,
    eventually,
    issue_key,
    placed_order,
    register_partner,
)

STAFF = {"admin", "sales", "finance", "warehouse", "auditor"}
ROLES = [*sorted(STAFF), "partner"]


@pytest.fixture(scope="module")
def world(system: System) -> dict[str, Any]:
    """Partner A with an approved, partly shipped and invoiced order; partner B with a key."""
    a = register_partner(system, tier="ACC", region="acc-a",
                         terms={"kind": "credit", "credit_limit_minor": 10_000_000, "term_days": 30})
    b = register_partner(system, tier="ACC", region="acc-b", terms={"kind": "prepaid"})
    ensure_product(system, "ACC-1", list_price=1_000, stock=100)
    a_key, b_key = issue_key(system, "partner", a["id"]), issue_key(system, "partner", b["id"])
    order = placed_order(system, a_key, partner_ref="A-1", sku="ACC-1", qty=5, region="acc-a")
    shipment = dispatch(system, order["id"], "ACC-1", 2)
    with system.as_role("credit", "finance") as credit:
        [invoice] = eventually(lambda: body(credit.get(
            "/v1/invoices", params={"partner_id": a["id"]}))["items"], bool, what="invoice")
    with system.client("delivery", a_key) as delivery:
        ret = body(delivery.post("/v1/returns", json={
            "order_id": order["id"], "lines": [{"sku": "ACC-1", "qty": 1}], "reason": "dented",
            "kind": "refund"}), 201)
    with system.as_role("rebates", "finance") as rebates:
        program = body(rebates.post("/v1/programs", json={
            "name": "ACC", "starts_on": str(date.today()), "ends_on": str(date.today()),
            "basis": "invoiced", "mode": "retroactive", "tiers": [{"from_minor": 0, "rate_bp": 50}],
            "eligibility": {"partner_ids": [a["id"]]}}), 201)
        eventually(lambda: body(rebates.get("/v1/accruals", params={
            "program_id": program["id"], "partner_id": a["id"]}))["items"], bool,
            what="A's accrual under the program")
        body(rebates.post(f"/v1/programs/{program['id']}/close"))
        [settlement] = body(rebates.get("/v1/settlements", params={
            "program_id": program["id"]}))["items"]
    return {"a": a, "b": b, "a_key": a_key, "b_key": b_key, "order": order,
            "shipment": shipment, "invoice": invoice, "return": ret, "program": program,
            "settlement": settlement}


def id_routes(w: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """Routes naming one of partner A's resources that a partner key may otherwise use."""
    a, order, inv = w["a"]["id"], w["order"]["id"], w["invoice"]["id"]
    return [
        ("GET", "partners", f"/v1/partners/{a}", None),
        ("GET", "orders", f"/v1/orders/{order}", None),
        ("POST", "orders", f"/v1/orders/{order}/cancel", {"reason": "not mine"}),
        ("GET", "credit", f"/v1/accounts/{a}", None),
        ("GET", "credit", f"/v1/invoices/{inv}", None),
        ("GET", "credit", f"/v1/statements/{a}", None),
        ("POST", "credit", f"/v1/statements/{a}/confirm", {"to": str(date.today()), "closing_minor": 0}),
        ("POST", "credit", f"/v1/statements/{a}/dispute", {"to": str(date.today()), "reason": "x"}),
        ("GET", "delivery", f"/v1/shipments/{w['shipment']['id']}", None),
        ("GET", "delivery", f"/v1/returns/{w['return']['id']}", None),
        ("POST", "delivery", "/v1/returns", {"order_id": order, "lines": [{"sku": "ACC-1", "qty": 1}],
                                             "reason": "x", "kind": "refund"}),
        ("GET", "rebates", f"/v1/programs/{w['program']['id']}", None),
        ("GET", "rebates", f"/v1/settlements/{w['settlement']['id']}", None),
        ("GET", "projections", f"/v1/views/orders/{order}/timeline", None),
        ("GET", "projections", f"/v1/views/partners/{a}", None),
    ]


def test_another_partners_resources_answer_404(system: System, world: dict[str, Any]) -> None:
    for method, service, path, payload in id_routes(world):
        with system.client(service, world["b_key"]) as client:
            response = client.request(method, path, json=payload)
        assert response.status_code == 404, f"{method} {path}: {response.status_code} {response.text}"
        assert world["a"]["id"] not in response.text or "not found" in response.text.lower()


def test_partner_lists_show_only_its_own(system: System, world: dict[str, Any]) -> None:
    a_id = world["a"]["id"]
    for service, path in [("orders", "/v1/orders"), ("orders", "/v1/deals"),
                          ("orders", "/v1/price-notices"), ("credit", "/v1/invoices"),
                          ("credit", "/v1/credit-notes"), ("delivery", "/v1/shipments"),
                          ("rebates", "/v1/accruals"), ("rebates", "/v1/settlements"),
                          ("partners", "/v1/partners")]:
        with system.client(service, world["b_key"]) as client:
            for params in ({}, {"partner_id": a_id}):
                response = client.get(path, params=params)
                assert response.status_code in (200, 404), f"{path} {params}: {response.text}"
                if response.status_code == 200:
                    assert a_id not in response.text, f"{path} {params} leaked partner A's data"


def role_matrix(w: dict[str, Any]) -> list[tuple[str, str, str, set[str], dict[str, Any] | None]]:
    """(method, service, path, roles allowed by API.md, body).

    ``partner`` means partner A's own key on partner A's resource ("partner: own").
    """
    a, order, inv = w["a"]["id"], w["order"]["id"], w["invoice"]["id"]
    today = str(date.today())
    read_staff = STAFF
    return [
        ("POST", "partners", "/v1/keys", {"admin"}, {"role": "auditor"}),
        ("DELETE", "partners", "/v1/keys/unknown-key", {"admin"}, None),
        ("POST", "partners", "/v1/partners", {"admin", "sales"}, {"name": "x"}),
        ("POST", "partners", f"/v1/partners/{a}/suspend", {"admin", "sales"}, {"reason": ""}),
        ("PATCH", "partners", f"/v1/partners/{a}", {"admin", "sales"}, {"tier": ""}),
        ("POST", "orders", "/v1/products", {"admin", "sales"}, {"sku": ""}),
        ("PUT", "orders", "/v1/price-lists/ACC", {"admin", "sales"}, {"discount_bp": -1}),
        ("GET", "orders", f"/v1/orders/{order}", read_staff | {"partner"}, None),
        ("GET", "orders", "/v1/price-notices", {"admin", "sales", "auditor", "partner"}, None),
        ("POST", "orders", "/v1/price-notices/none/acknowledge", {"partner"}, None),
        ("POST", "orders", "/v1/deals", {"admin", "sales", "partner"}, {"end_customer": ""}),
        ("POST", "orders", "/v1/deals/none/approve", {"admin", "sales"}, {"lines": []}),
        ("GET", "orders", "/v1/deals", {"admin", "sales", "auditor", "partner"}, None),
        ("GET", "credit", f"/v1/accounts/{a}", {"finance", "auditor", "partner"}, None),
        ("PUT", "credit", f"/v1/accounts/{a}/terms", {"finance"}, {"kind": "bogus"}),
        ("POST", "credit", f"/v1/holds/{order}/release", {"finance"}, {"reason": ""}),
        ("POST", "credit", "/v1/payments", {"finance"}, {"partner_id": a}),
        ("GET", "credit", "/v1/invoices", {"finance", "auditor", "partner"}, None),
        ("GET", "credit", f"/v1/invoices/{inv}", {"finance", "auditor", "partner"}, None),
        ("POST", "credit", f"/v1/invoices/{inv}/write-off", {"finance"}, {"amount_minor": -1}),
        ("GET", "credit", "/v1/credit-notes", {"finance", "auditor", "partner"}, None),
        ("GET", "credit", f"/v1/statements/{a}", {"finance", "auditor", "partner"}, None),
        ("POST", "credit", f"/v1/statements/{a}/confirm", {"partner"}, {"to": today}),
        ("POST", "delivery", "/v1/stock/receipts", {"warehouse"}, {"sku": ""}),
        ("GET", "delivery", "/v1/stock", {"warehouse"}, None),
        ("GET", "delivery", "/v1/stock/ACC-1", {"warehouse"}, None),
        ("POST", "delivery", f"/v1/shipments/{w['shipment']['id']}/dispatch", {"warehouse"},
         {"lines": []}),
        ("POST", "delivery", f"/v1/shipments/{w['shipment']['id']}/deliver", {"warehouse"}, {}),
        ("POST", "delivery", f"/v1/returns/{w['return']['id']}/receive", {"warehouse"}, {"lines": []}),
        ("POST", "delivery", f"/v1/returns/{w['return']['id']}/inspect", {"warehouse"}, {"lines": []}),
        ("POST", "rebates", "/v1/programs", {"finance"}, {"name": ""}),
        ("POST", "rebates", f"/v1/programs/{w['program']['id']}/close", {"finance"}, None),
        ("GET", "rebates", "/v1/accruals", {"finance", "auditor", "partner"}, None),
        ("GET", "rebates", "/v1/settlements", {"finance", "auditor", "partner"}, None),
        ("GET", "projections", "/v1/views/receivables/aging", {"finance", "auditor"}, None),
        ("GET", "projections", "/v1/views/sales?group_by=region", {"finance", "sales", "auditor"}, None),
        ("GET", "projections", "/v1/audit/events", {"auditor", "admin"}, None),
        ("GET", "projections", "/v1/audit/verify", {"auditor", "admin"}, None),
    ]


def test_roles_are_refused_what_api_md_does_not_give_them(system: System, world: dict[str, Any]) -> None:
    refused_wrongly, allowed_wrongly = [], []
    for method, service, path, allowed, payload in role_matrix(world):
        for role in ROLES:
            if role == "partner":
                client = system.client(service, world["a_key"])
            elif role == "admin":
                client = system.client(service)
            else:
                client = system.as_role(service, role)
            with client:
                response = client.request(method, path, json=payload)
            assert response.status_code != 500, f"{role} {method} {path}: {response.text}"
            if role in allowed:
                if response.status_code == 403:
                    refused_wrongly.append(f"{role} {method} {path}")
            elif response.status_code != 403:
                allowed_wrongly.append(f"{role} {method} {path} -> {response.status_code}")
    assert not allowed_wrongly, "roles not given this call were let through: " + "; ".join(allowed_wrongly)
    assert not refused_wrongly, "roles given this call were refused: " + "; ".join(refused_wrongly)


def test_missing_or_unknown_keys_answer_401(system: System) -> None:
    for service in system.urls:
        with system.client(service, "not-a-key") as client:
            assert client.get("/v1/nothing-here").status_code in (401, 404)
        with system.client(service, "not-a-key") as client:
            response = client.get("/v1/audit/verify" if service == "projections" else "/v1/orders")
            assert response.status_code in (200, 401, 404)
            # the operational endpoints are not on the public port; the internal one needs no key
            assert client.get("/ready").status_code == 404
        with system.ops(service) as ops:
            assert ops.get("/ready").status_code == 200
    with system.client("orders", "not-a-key") as client:
        response = client.get("/v1/orders")
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")


def test_revoked_key_is_refused_by_every_service_within_5_seconds(system: System) -> None:
    with system.client("partners") as partners:
        issued = body(partners.post("/v1/keys", json={"role": "auditor"}), 201)
    probes = {"partners": "/v1/partners", "orders": "/v1/orders", "credit": "/v1/invoices",
              "delivery": "/v1/shipments", "rebates": "/v1/programs",
              "projections": "/v1/audit/events"}
    for service, path in probes.items():  # known everywhere first (keys travel as events)
        with system.client(service, issued["secret"]) as client:
            eventually(lambda c=client, p=path: c.get(p).status_code, lambda s: s != 401,
                       what=f"{service} to accept the new key")
    with system.client("partners") as partners:
        assert partners.delete(f"/v1/keys/{issued['key_id']}").status_code in (200, 204)
    revoked_at = time.monotonic()
    for service, path in probes.items():
        with system.client(service, issued["secret"]) as client:
            eventually(lambda c=client, p=path: c.get(p).status_code, lambda s: s == 401,
                       seconds=max(0.5, 5 - (time.monotonic() - revoked_at)),
                       what=f"{service} to refuse the revoked key")


def test_unknown_fields_and_bad_input_answer_problems_never_500(system: System,
                                                               world: dict[str, Any]) -> None:
    cases = [
        ("partners", "sales", "/v1/partners", {"name": "x", "surprise": 1}),
        ("orders", "sales", "/v1/products", {"sku": "Z", "name": "z", "category": "c",
                                             "list_price_minor": 1, "colour": "red"}),
        ("orders", "sales", "/v1/products", {"sku": "Z", "name": "z", "category": "c",
                                             "list_price_minor": 1.5}),
        ("orders", "sales", "/v1/orders", {"partner_ref": "x", "lines": [{"sku": "ACC-1", "qty": 0}],
                                           "ship_to": {"region": "acc-a"}, "partner_id": world["a"]["id"]}),
        ("orders", "sales", "/v1/orders", {"partner_ref": "x", "lines": [],
                                           "ship_to": {"region": "acc-a"}, "partner_id": world["a"]["id"]}),
        ("credit", "finance", "/v1/payments", {"partner_id": world["a"]["id"], "amount_minor": -5,
                                               "bank_ref": "neg", "received_on": "2026-13-45"}),
        ("credit", "finance", "/v1/payments", {"partner_id": world["a"]["id"], "amount_minor": 10,
                                               "bank_ref": "x", "received_on": "2026-01-01", "tip": 1}),
        ("delivery", "warehouse", "/v1/stock/receipts", {"sku": "ACC-1", "qty": -3, "reference": "r"}),
        ("rebates", "finance", "/v1/programs", {"name": "p", "starts_on": "2026-02-01",
                                                "ends_on": "2026-01-01", "basis": "invoiced",
                                                "mode": "retroactive",
                                                "tiers": [{"from_minor": 0, "rate_bp": 20_000}]}),
    ]
    for service, role, path, payload in cases:
        with system.as_role(service, role) as client:
            response = client.post(path, json=payload)
        assert response.status_code == 422, f"{path} {payload}: {response.status_code} {response.text}"
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert {"type", "title", "status", "detail"} <= problem.keys()
    with system.as_role("orders", "sales") as client:
        garbage = client.post("/v1/products", content=b"{not json",
                              headers={"content-type": "application/json"})
    assert garbage.status_code == 422
