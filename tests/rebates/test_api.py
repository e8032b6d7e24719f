"""The rebates HTTP contract on both databases: programs, validation, roles, isolation, idempotency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from libs.store.database import Database
from services.rebates.app import SPEC
from tests.rebates.support import Feed, issue_key, program_body
from tests.service_support import RunningService, running


@pytest.fixture
async def svc(db: Database) -> AsyncIterator[RunningService]:
    async with running(SPEC, db) as service:
        yield service


async def publish(svc: RunningService, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = await svc.client.post("/v1/programs", json=program_body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_finance_publishes_a_program_that_staff_can_read(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance", key_id="fin-1")
    body = program_body(eligibility={"tiers": ["A"], "categories": ["tools"]},
                        growth={"baseline_from": "2025-01-01", "baseline_to": "2025-03-31",
                                "min_growth_bp": 1000, "rate_bp": 50},
                        timeliness={"min_on_time_bp": 9000, "rate_bp": 25}, cap_minor=500_000)
    response = await svc.client.post("/v1/programs", json=body, headers=finance)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"].startswith("prg_")
    # Q1 2026 has ended: an open program whose period is over shows ``closed`` until its final close.
    assert created["status"] == "closed" and created["published_by"] == "fin-1"
    assert created["tiers"] == body["tiers"] and created["cap_minor"] == 500_000
    assert created["eligibility"] == {"tiers": ["A"], "regions": [], "categories": ["tools"],
                                      "partner_ids": []}
    assert created["growth"]["baseline_to"] == "2025-03-31" and created["currency"] == "CNY"
    for role in ("sales", "warehouse", "auditor", "finance"):
        headers = await issue_key(svc, role)
        got = await svc.client.get(f"/v1/programs/{created['id']}", headers=headers)
        assert got.status_code == 200 and got.json() == created
    listed = await svc.client.get("/v1/programs", headers=finance)
    assert listed.json() == {"items": [created], "next_cursor": None}


BROKEN = [
    ({"ends_on": "2025-12-31"}, "ends_on must not be before starts_on"),
    ({"tiers": []}, "tiers"),
    ({"tiers": [{"from_minor": 0, "rate_bp": 100}, {"from_minor": 0, "rate_bp": 200}]}, "increasing"),
    ({"tiers": [{"from_minor": 5, "rate_bp": 100}, {"from_minor": 1, "rate_bp": 200}]}, "increasing"),
    ({"tiers": [{"from_minor": -1, "rate_bp": 100}]}, "tiers.0.from_minor"),
    ({"tiers": [{"from_minor": 0, "rate_bp": 10_001}]}, "tiers.0.rate_bp"),
    ({"tiers": [{"from_minor": 0, "rate_bp": 1.5}]}, "tiers.0.rate_bp"),
    ({"tiers": [{"from_minor": "100", "rate_bp": 1}]}, "tiers.0.from_minor"),
    ({"tiers": [{"from_minor": 10**30, "rate_bp": 1}]}, "tiers.0.from_minor"),
    ({"tiers": [{"from_minor": 0}]}, "tiers.0.rate_bp"),
    ({"basis": "shipped"}, "basis"),
    ({"mode": "flat"}, "mode"),
    ({"starts_on": "2026-02-30"}, "starts_on"),
    ({"starts_on": 20260101}, "starts_on"),
    ({"name": "  "}, "name"),
    ({"cap_minor": -1}, "cap_minor"),
    ({"currency": "yuan"}, "currency"),
    ({"colour": "red"}, "colour"),
    ({"eligibility": {"tiers": ["A"], "segments": ["x"]}}, "eligibility.segments"),
    ({"growth": {"baseline_from": "2026-01-01", "baseline_to": "2026-02-01", "min_growth_bp": 0,
                 "rate_bp": 10}}, "baseline must end before"),
    ({"growth": {"baseline_from": "2025-03-01", "baseline_to": "2025-02-01", "min_growth_bp": 0,
                 "rate_bp": 10}}, "baseline_to must not be before"),
    ({"timeliness": {"min_on_time_bp": 10_001, "rate_bp": 10}}, "timeliness.min_on_time_bp"),
]


async def test_a_broken_program_is_refused_with_the_bad_field(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    for overrides, field in BROKEN:
        response = await svc.client.post("/v1/programs", json=program_body(**overrides), headers=finance)
        assert response.status_code == 422, (overrides, response.text)
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem["type"].endswith("/validation")
        assert any(field in error["field"] or field in error["message"] for error in problem["errors"]), (
            overrides, problem)
    not_json = await svc.client.post("/v1/programs", content=b"{", headers=finance)
    assert not_json.status_code == 422
    assert (await svc.client.get("/v1/programs", headers=finance)).json()["items"] == []


async def test_only_finance_publishes_closes_and_approves(svc: RunningService) -> None:
    assert (await svc.client.get("/v1/programs")).status_code == 401
    bogus = {"Authorization": "Bearer nope"}
    assert (await svc.client.get("/v1/programs", headers=bogus)).status_code == 401
    for role in ("admin", "sales", "warehouse", "auditor", "partner"):
        headers = await issue_key(svc, role, partner_id="p1" if role == "partner" else None)
        created = await svc.client.post("/v1/programs", json=program_body(), headers=headers)
        assert created.status_code == 403
        assert (await svc.client.post("/v1/programs/prg_x/close", headers=headers)).status_code == 403
        assert (await svc.client.post("/v1/settlements/stl_x/approve", headers=headers)).status_code == 403
    for role in ("admin", "sales", "warehouse"):
        headers = await issue_key(svc, role)
        assert (await svc.client.get("/v1/accruals", headers=headers)).status_code == 403
        assert (await svc.client.get("/v1/settlements", headers=headers)).status_code == 403
        assert (await svc.client.get("/v1/settlements/stl_x", headers=headers)).status_code == 403


async def test_unknown_ids_answer_404(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    for method, path in [("GET", "/v1/programs/prg_nope"), ("POST", "/v1/programs/prg_nope/close"),
                         ("GET", "/v1/settlements/stl_nope"), ("POST", "/v1/settlements/stl_nope/approve")]:
        response = await svc.client.request(method, path, headers=finance)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["status"] == 404


async def test_a_partner_sees_only_programs_it_is_eligible_for(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    await feed.partner("p1", tier="A", region="east")
    await feed.partner("p2", tier="B", region="west")
    open_to_all = await publish(svc, finance, name="all")
    tier_a = await publish(svc, finance, name="tier A", eligibility={"tiers": ["A"]})
    west = await publish(svc, finance, name="west", eligibility={"regions": ["west"]})
    only_p2 = await publish(svc, finance, name="p2", eligibility={"partner_ids": ["p2"]})
    p1 = await issue_key(svc, "partner", partner_id="p1")
    listed = (await svc.client.get("/v1/programs", headers=p1)).json()["items"]
    assert {item["id"] for item in listed} == {open_to_all["id"], tier_a["id"]}
    assert (await svc.client.get(f"/v1/programs/{tier_a['id']}", headers=p1)).status_code == 200
    for hidden in (west, only_p2):
        assert (await svc.client.get(f"/v1/programs/{hidden['id']}", headers=p1)).status_code == 404
    await feed.tier_change("p2", "B", "A")
    p2 = await issue_key(svc, "partner", partner_id="p2")
    listed = (await svc.client.get("/v1/programs", headers=p2)).json()["items"]
    assert {item["id"] for item in listed} == {open_to_all["id"], tier_a["id"], west["id"], only_p2["id"]}
    unknown = await issue_key(svc, "partner", partner_id="p-unknown")
    listed = (await svc.client.get("/v1/programs", headers=unknown)).json()["items"]
    assert [item["id"] for item in listed] == [open_to_all["id"]]


async def test_a_partner_never_sees_the_other_partners_a_program_names(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    feed = Feed(svc)
    for partner in ("p1", "p2", "p3"):
        await feed.partner(partner, tier="A", region="east")
    program = await publish(svc, finance, eligibility={"tiers": ["A"], "partner_ids": ["p1", "p2", "p3"]})
    p2 = await issue_key(svc, "partner", partner_id="p2")
    one = (await svc.client.get(f"/v1/programs/{program['id']}", headers=p2)).json()
    (listed,) = (await svc.client.get("/v1/programs", headers=p2)).json()["items"]
    for seen in (one, listed):
        assert seen["eligibility"] == {"tiers": ["A"], "regions": [], "categories": [],
                                       "partner_ids": ["p2"]}
    staff = (await svc.client.get(f"/v1/programs/{program['id']}", headers=finance)).json()
    assert staff["eligibility"]["partner_ids"] == ["p1", "p2", "p3"]


async def test_program_lists_page_with_limit_and_cursor_and_filter_by_status(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    ids = {(await publish(svc, finance, name=f"p{n}"))["id"] for n in range(3)}
    first = (await svc.client.get("/v1/programs", params={"limit": 2}, headers=finance)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = (await svc.client.get("/v1/programs", params={"limit": 2, "cursor": first["next_cursor"]},
                                 headers=finance)).json()
    assert {p["id"] for p in first["items"] + rest["items"]} == ids and rest["next_cursor"] is None
    closed_id = sorted(ids)[0]
    assert (await svc.client.post(f"/v1/programs/{closed_id}/close", headers=finance)).status_code == 200
    final = (await svc.client.get("/v1/programs", params={"status": "final"}, headers=finance)).json()
    assert [p["id"] for p in final["items"]] == [closed_id]
    closed = (await svc.client.get("/v1/programs", params={"status": "closed"}, headers=finance)).json()
    assert {p["id"] for p in closed["items"]} == ids - {closed_id}  # period over, not yet final
    still_open = (await svc.client.get("/v1/programs", params={"status": "open"}, headers=finance)).json()
    assert still_open["items"] == []
    assert (await svc.client.get("/v1/programs", params={"limit": 0}, headers=finance)).status_code == 422


async def test_publishing_with_an_idempotency_key_happens_once(svc: RunningService) -> None:
    finance = await issue_key(svc, "finance")
    headers = {**finance, "Idempotency-Key": "q1-program"}
    first = await svc.client.post("/v1/programs", json=program_body(), headers=headers)
    again = await svc.client.post("/v1/programs", json=program_body(), headers=headers)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    other = await svc.client.post("/v1/programs", json=program_body(name="other"), headers=headers)
    assert other.status_code == 409
    listed = (await svc.client.get("/v1/programs", headers=finance)).json()["items"]
    assert len(listed) == 1


async def test_close_answers_the_program_with_its_proposals_and_refuses_a_body_field(
        svc: RunningService) -> None:
    finance = await issue_key(svc, "finance", key_id="fin-1")
    program = await publish(svc, finance)
    closed = await svc.client.post(f"/v1/programs/{program['id']}/close", headers=finance)
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert body["status"] == "final" and body["settlements"] == [] and body["last_closed_by"] == "fin-1"
    assert body["closes"] == 1
    with_field = await svc.client.post(f"/v1/programs/{program['id']}/close", json={"force": True},
                                       headers=finance)
    assert with_field.status_code == 422
    keyed = {**finance, "Idempotency-Key": "close-q1"}
    first = await svc.client.post(f"/v1/programs/{program['id']}/close", headers=keyed)
    again = await svc.client.post(f"/v1/programs/{program['id']}/close", headers=keyed)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and again.json()["closes"] == 2


async def test_accrual_and_settlement_lists_are_forced_to_a_partner_keys_own_id(svc: RunningService) -> None:
    feed = Feed(svc)
    finance = await issue_key(svc, "finance", key_id="fin-1")
    await feed.partner("p1")
    await feed.partner("p2")
    program = await publish(svc, finance)
    await feed.invoice("inv-1", "p1", [("tools", 100_000)])
    await feed.invoice("inv-2", "p2", [("tools", 200_000)])
    closed = (await svc.client.post(f"/v1/programs/{program['id']}/close", headers=finance)).json()
    by_partner = {s["partner_id"]: s for s in closed["settlements"]}
    p1 = await issue_key(svc, "partner", partner_id="p1")
    for path in ("/v1/accruals", "/v1/settlements"):
        own = (await svc.client.get(path, headers=p1, params={"partner_id": "p2"})).json()["items"]
        assert [item["partner_id"] for item in own] == ["p1"]
        every = (await svc.client.get(path, headers=finance)).json()["items"]
        assert sorted(item["partner_id"] for item in every) == ["p1", "p2"]
    assert (await svc.client.get(f"/v1/settlements/{by_partner['p2']['id']}", headers=p1)).status_code == 404
    mine = await svc.client.get(f"/v1/settlements/{by_partner['p1']['id']}", headers=p1)
    assert mine.status_code == 200 and mine.json()["sources"] == [
        {"kind": "invoice", "ref": "inv-1", "amount_minor": 100_000}]
    auditor = await issue_key(svc, "auditor")
    seen = await svc.client.get(f"/v1/settlements/{by_partner['p2']['id']}", headers=auditor)
    assert seen.status_code == 200
    for path in ("/v1/accruals", "/v1/settlements"):
        filtered = await svc.client.get(path, headers=auditor, params={"program_id": "prg_other"})
        assert filtered.json()["items"] == []
        by_program = (await svc.client.get(path, headers=auditor,
                                           params={"program_id": program["id"]})).json()["items"]
        assert sorted(item["partner_id"] for item in by_program) == ["p1", "p2"]
        assert {item["program_id"] for item in by_program} == {program["id"]}
