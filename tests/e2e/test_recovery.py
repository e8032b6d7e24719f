"""An idle system whose broker restarts empty keeps its promises within 5 s of the return.

An order's confirmation reached the broker, which lost it before credit (down)
read it. Nothing is written afterwards, so no produce can tell a relay that the
broker lost its data: the relays' heartbeats must, and the consumers must re-join
and catch up by themselves. Then a key revoked and an order placed after the
return take effect within 5 s. Runs after the other e2e files but before
``test_restart.py`` (file order): it restarts the shared broker.
"""

from __future__ import annotations

import os
import signal
import time

import httpx

from tests.e2e.conftest import System, body, ensure_product, eventually, register_partner

PROMISE_S = 5.0
"""Revocation, order status and projections hold again within this of the broker's return."""

COLD_START_S = 10.0
"""The stranded order waits on credit, which was down and starts cold after the broker
(joins its group, reads the whole history): counted from credit answering again."""


def restart_broker(system: System) -> float:
    """Kill the embedded broker; the supervisor's check starts it again, empty, on its port
    (and creates the topics, as after any broker crash), and any dead service. Returns
    when the broker is back."""
    supervisor = system.supervisor
    os.kill(supervisor.pids()["broker"], signal.SIGKILL)
    eventually(lambda: "broker" in supervisor.pids(), lambda alive: not alive, seconds=10,
               what="the broker to die")
    supervisor.check()
    assert "broker" in supervisor.pids(), "the supervisor did not start the broker again"
    return time.monotonic()


def within(started: float, bound: float = PROMISE_S) -> float:
    """What is left of the promise, counted from ``started``."""
    return max(0.5, bound - (time.monotonic() - started))


def health(client: httpx.Client) -> int:
    """The status of ``GET /health`` (0: not listening yet)."""
    try:
        return client.get("/health").status_code
    except httpx.TransportError:
        return 0


def timeline_types(projections: httpx.Client, order_id: str) -> set[str]:
    """The event types projections holds for an order (none yet: empty)."""
    response = projections.get(f"/v1/views/orders/{order_id}/timeline")
    return {e["type"] for e in response.json()["events"]} if response.status_code == 200 else set()


def test_an_idle_system_heals_broker_loss_within_5_seconds(system: System) -> None:
    partner = register_partner(system, tier="S", region="idle",
                               terms={"kind": "credit", "credit_limit_minor": 900_000,
                                      "term_days": 30})
    ensure_product(system, "IDLE-1", list_price=4_000, stock=20)
    with system.client("partners") as partners:
        doomed, ordering = (body(partners.post("/v1/keys", json={
            "role": "partner", "partner_id": partner["id"], "name": name}), 201)
            for name in ("e2e idle doomed", "e2e idle ordering"))
    for service, secret in (("orders", ordering["secret"]), ("orders", doomed["secret"]),
                            ("projections", ordering["secret"])):
        with system.client(service, secret) as client:
            eventually(lambda c=client: c.get("/v1/orders").status_code, lambda s: s != 401,
                       what=f"{service} to accept the key")

    # An order confirmed while credit is down: its OrderConfirmed reaches the broker, and
    # the broker loses it before credit reads it. Nothing else is written afterwards.
    # (Killed, not paused: a paused process inside a PostgreSQL transaction would hold
    # back every relay on the server.)
    supervisor = system.supervisor
    os.kill(supervisor.pids()["credit"], signal.SIGKILL)
    eventually(lambda: "credit" in supervisor.pids(), lambda alive: not alive, seconds=10,
               what="credit to die")
    with system.client("orders", ordering["secret"]) as orders:
        stranded = eventually(lambda: orders.post("/v1/orders", json={
            "partner_ref": "IDLE-A", "lines": [{"sku": "IDLE-1", "qty": 1}],
            "ship_to": {"region": "idle"}}), lambda r: r.status_code == 201,
            what="orders to know the partner").json()
        eventually(lambda: body(orders.get(f"/v1/orders/{stranded['id']}"))["status"],
                   lambda s: s == "confirmed", what="the order confirmed (stock allocated)")
    with system.client("projections", ordering["secret"]) as projections:
        eventually(lambda: timeline_types(projections, stranded["id"]),
                   lambda types: "OrderConfirmed" in types,
                   what="the confirmation on the broker (projections read it)")
    restart_broker(system)  # the supervisor's check starts credit again as well
    with system.ops("credit") as credit:
        eventually(lambda: health(credit), lambda s: s == 200, what="credit to be back")
    back = time.monotonic()
    with system.client("orders", ordering["secret"]) as orders:
        eventually(lambda: body(orders.get(f"/v1/orders/{stranded['id']}"))["status"],
                   lambda s: s == "approved", seconds=within(back, COLD_START_S),
                   what="the idle system to approve the order whose confirmation the broker lost")

    with system.client("partners") as partners:
        assert partners.delete(f"/v1/keys/{doomed['key_id']}").status_code in (200, 204)
    revoked_at = time.monotonic()
    with system.client("orders", doomed["secret"]) as orders:
        eventually(lambda: orders.get("/v1/orders").status_code, lambda s: s == 401,
                   seconds=within(revoked_at), what="orders to refuse the revoked key")

    with system.client("orders", ordering["secret"]) as orders:
        placed = body(orders.post("/v1/orders", json={
            "partner_ref": "IDLE-B", "lines": [{"sku": "IDLE-1", "qty": 2}],
            "ship_to": {"region": "idle"}}), 201)
        placed_at = time.monotonic()
        eventually(lambda: body(orders.get(f"/v1/orders/{placed['id']}"))["status"],
                   lambda s: s == "approved", seconds=within(placed_at),
                   what="an order placed after the broker's return to be approved")
    with system.client("projections", ordering["secret"]) as projections:
        eventually(lambda: timeline_types(projections, placed["id"]),
                   lambda types: "OrderApproved" in types,
                   seconds=within(placed_at), what="projections to show the approval")
