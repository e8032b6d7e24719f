"""Stop everything, start again: state intact, the broker's lost topics healed, new orders flow.

Runs last on its system (file order): it restarts the shared processes.
"""

from __future__ import annotations

from tests.e2e.conftest import (
    System,
    body,
    ensure_product,
    eventually,
    issue_key,
    register_partner,
)


def test_restart_keeps_state_and_heals_the_broker(system: System) -> None:
    partner = register_partner(system, tier="S", region="central",
                               terms={"kind": "credit", "credit_limit_minor": 500_000,
                                      "term_days": 15})
    ensure_product(system, "RST-1", list_price=7_000, stock=10)
    key = issue_key(system, "partner", partner["id"])
    with system.client("orders", key) as orders:
        before = eventually(lambda: orders.post("/v1/orders", json={
            "partner_ref": "R-1", "lines": [{"sku": "RST-1", "qty": 2}],
            "ship_to": {"region": "central"}}), lambda r: r.status_code == 201,
            what="orders to know the partner").json()
        eventually(lambda: body(orders.get(f"/v1/orders/{before['id']}"))["status"],
                   lambda s: s == "approved", what="the first order approved")
    with system.as_role("credit", "finance") as credit:
        account_before = body(credit.get(f"/v1/accounts/{partner['id']}"))

    system.supervisor.stop()
    system.supervisor.start()  # the embedded broker comes back empty
    system.urls = system.supervisor.urls()

    with system.client("orders", key) as orders:
        assert body(orders.get(f"/v1/orders/{before['id']}"))["status"] == "approved"
        after = body(orders.post("/v1/orders", json={
            "partner_ref": "R-2", "lines": [{"sku": "RST-1", "qty": 1}],
            "ship_to": {"region": "central"}}), 201)
        eventually(lambda: body(orders.get(f"/v1/orders/{after['id']}"))["status"],
                   lambda s: s == "approved", seconds=60, what="a new order to flow after restart")
    with system.as_role("credit", "finance") as credit:
        account = eventually(lambda: body(credit.get(f"/v1/accounts/{partner['id']}")),
                             lambda a: a["exposure_minor"] == account_before["exposure_minor"] + 7_000,
                             what="the new order's exposure, counted once")
    assert account["credit_limit_minor"] == 500_000
    with system.as_role("projections", "auditor") as projections:
        verified = body(projections.get("/v1/audit/verify"))
    assert verified["ok"], verified
