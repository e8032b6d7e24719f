"""Twenty orders race for one credit limit: never more than the limit is approved."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.e2e.conftest import (
    System,
    body,
    ensure_product,
    eventually,
    issue_key,
    register_partner,
)

SETTLED = {"approved", "credit_hold"}


def test_twenty_concurrent_orders_never_exceed_the_credit_limit(system: System) -> None:
    partner = register_partner(system, tier="R", region="west",
                               terms={"kind": "credit", "credit_limit_minor": 100_000,
                                      "term_days": 30})
    ensure_product(system, "RACE-1", list_price=10_000, stock=40)  # 10 orders fit the limit
    key = issue_key(system, "partner", partner["id"])

    def place(n: int) -> str:
        with system.client("orders", key) as orders:
            response = eventually(
                lambda: orders.post("/v1/orders", json={
                    "partner_ref": f"RACE-{n}", "lines": [{"sku": "RACE-1", "qty": 1}],
                    "ship_to": {"region": "west"}}),
                lambda r: r.status_code == 201, what="orders to know the partner")
            return response.json()["id"]

    with ThreadPoolExecutor(20) as pool:
        order_ids = list(pool.map(place, range(20)))

    with system.as_role("orders", "sales") as orders:
        def statuses() -> list[str]:
            return [body(orders.get(f"/v1/orders/{oid}"))["status"] for oid in order_ids]

        final = eventually(statuses, lambda s: all(x in SETTLED for x in s), seconds=60,
                           what="every order to be approved or held")
    approved = final.count("approved")
    assert approved * 10_000 <= 100_000, f"{approved} orders approved against the limit"
    assert approved == 10, "exactly the room that exists is used"
    with system.as_role("credit", "finance") as credit:
        account = body(credit.get(f"/v1/accounts/{partner['id']}"))
    assert account["exposure_minor"] == approved * 10_000 <= account["credit_limit_minor"]
