"""Partners over HTTP on SQLite and PostgreSQL: register, agreements, lifecycle, changes, reads."""

from __future__ import annotations

from typing import Any

import pytest

from tests.service_support import ADMIN, RunningService

from .support import issue_key, partner_body, register, sign

PROBLEM = "https://o2c.dev/problems/"


async def stream_types(svc: RunningService, partner_id: str) -> list[str]:
    return [e.event_type for e in await svc.ctx.store.load(f"partner-{partner_id}")]


async def test_register_answers_the_applied_partner(svc: RunningService) -> None:
    response = await svc.client.post("/v1/partners", json=partner_body(
        territories=["east", "east", "north"], parent_id=None), headers=ADMIN)
    assert response.status_code == 201, response.text
    partner = response.json()
    assert partner["id"].startswith("ptn_")
    assert {k: partner[k] for k in ("name", "legal_id", "kind", "tier", "region", "territories",
                                    "categories", "parent_id", "payment_terms", "status",
                                    "agreements", "violations", "currency")} == {
        "name": "Huadong Trading Co.", "legal_id": "91310000MA1FL0001X", "kind": "distributor",
        "tier": "A", "region": "east", "territories": ["east", "north"], "categories": ["pumps"],
        "parent_id": None, "status": "applied", "agreements": [], "violations": [],
        "currency": "CNY",
        "payment_terms": {"kind": "credit", "credit_limit_minor": 500_000, "term_days": 30},
    }
    assert partner["violation_count"] == 0
    assert (await svc.client.get(f"/v1/partners/{partner['id']}", headers=ADMIN)).json() == partner
    assert await stream_types(svc, partner["id"]) == ["PartnerRegistered"]


async def test_sub_dealer_and_prepaid_partner(svc: RunningService) -> None:
    parent = await register(svc)
    child = await register(svc, legal_id="L-CHILD", kind="reseller", parent_id=parent["id"],
                           payment_terms={"kind": "prepaid"}, categories=None, currency="USD")
    assert child["parent_id"] == parent["id"] and child["categories"] == []
    assert child["payment_terms"] == {"kind": "prepaid", "credit_limit_minor": None,
                                      "term_days": None}
    assert child["currency"] == "USD"
    other = await register(svc, legal_id="L-OTHER", kind="reseller", parent_id=None)
    listed = (await svc.client.get(f"/v1/partners?parent_id={parent['id']}", headers=ADMIN)).json()
    assert [p["id"] for p in listed["items"]] == [child["id"]]  # neither ``other`` nor the parent
    assert other["parent_id"] is None
    none = (await svc.client.get("/v1/partners?parent_id=ptn_nobody", headers=ADMIN)).json()
    assert none["items"] == []


@pytest.mark.parametrize(("changes", "slug"), [
    ({"kind": "wholesaler"}, "validation"),
    ({"tier": "  "}, "validation"),
    ({"region": ""}, "validation"),
    ({"territories": []}, "validation"),
    ({"territories": "east"}, "validation"),
    ({"territories": ["east", ""]}, "validation"),
    ({"name": None}, "validation"),
    ({"nickname": "x"}, "validation"),
    ({"currency": "cny"}, "validation"),
    ({"payment_terms": {"kind": "barter"}}, "validation"),
    ({"payment_terms": {"kind": "credit", "credit_limit_minor": -1, "term_days": 3}}, "validation"),
    ({"payment_terms": {"kind": "credit", "credit_limit_minor": "10", "term_days": 3}},
     "validation"),
    ({"payment_terms": {"kind": "credit", "credit_limit_minor": 10, "term_days": -3}},
     "validation"),
    ({"payment_terms": {"kind": "credit", "credit_limit_minor": 1.5, "term_days": 3}},
     "validation"),
    ({"payment_terms": {"kind": "prepaid", "credit_limit_minor": 10}}, "invalid-payment-terms"),
    ({"payment_terms": {"kind": "credit", "term_days": 30}}, "invalid-payment-terms"),
    ({"payment_terms": {"kind": "credit", "credit_limit_minor": 10}}, "invalid-payment-terms"),
    ({"parent_id": "ptn_missing"}, "unknown-parent"),
])
async def test_registration_validation(svc: RunningService, changes: dict[str, Any],
                                       slug: str) -> None:
    response = await svc.client.post("/v1/partners", json=partner_body(**changes), headers=ADMIN)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["type"] == PROBLEM + slug and problem["errors"]


async def test_a_legal_id_is_registered_once(svc: RunningService) -> None:
    await register(svc, legal_id="91310000ABC")
    response = await svc.client.post("/v1/partners", json=partner_body(
        legal_id=" 91310000abc ", name="Other"), headers=ADMIN)
    assert response.status_code == 409
    assert response.json()["type"] == PROBLEM + "duplicate-legal-id"


async def test_who_may_register(svc: RunningService) -> None:
    sales = await issue_key(svc, "sales")
    assert (await svc.client.post("/v1/partners", json=partner_body(),
                                  headers=sales)).status_code == 201
    for role in ("finance", "warehouse", "auditor"):
        response = await svc.client.post("/v1/partners", json=partner_body(),
                                         headers=await issue_key(svc, role))
        assert response.status_code == 403
    assert (await svc.client.post("/v1/partners", json=partner_body())).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await svc.client.post("/v1/partners", json=partner_body(),
                                  headers=wrong)).status_code == 401


async def test_registration_is_idempotent(svc: RunningService) -> None:
    headers = {**ADMIN, "Idempotency-Key": "reg-1"}
    first = await svc.client.post("/v1/partners", json=partner_body(), headers=headers)
    again = await svc.client.post("/v1/partners", json=partner_body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    other = await svc.client.post("/v1/partners", json=partner_body(name="Else"), headers=headers)
    assert other.status_code == 409
    listed = (await svc.client.get("/v1/partners", headers=ADMIN)).json()["items"]
    assert len(listed) == 1


async def test_agreements_set_the_status(svc: RunningService) -> None:
    partner = await register(svc)
    trial = await sign(svc, partner["id"], "trial", "2025-01-01", "2025-03-31")
    assert trial["status"] == "trial" and trial["trial_ends_on"] == "2025-03-31"
    active = await sign(svc, partner["id"], "annual", "2025-02-01", "2026-01-31")
    assert active["status"] == "active" and active["trial_ends_on"] is None
    assert [(a["kind"], a["state"]) for a in active["agreements"]] == [
        ("trial", "superseded"), ("annual", "in_force")]
    assert active["agreement_id"] == active["agreements"][1]["id"]
    assert await stream_types(svc, partner["id"]) == [
        "PartnerRegistered", "AgreementSigned", "AgreementSigned"]


@pytest.mark.parametrize("body", [
    {"kind": "annual", "starts_on": "2025-01-01", "ends_on": "2025-01-01"},
    {"kind": "annual", "starts_on": "2025-02-01", "ends_on": "2025-01-01"},
    {"kind": "annual", "starts_on": "2025-02-30", "ends_on": "2026-01-01"},
    {"kind": "annual", "starts_on": 20250101, "ends_on": "2026-01-01"},
    {"kind": "forever", "starts_on": "2025-01-01", "ends_on": "2026-01-01"},
    {"kind": "annual", "starts_on": "2025-01-01", "ends_on": "2026-01-01",
     "annual_target_minor": -5},
    {"kind": "annual", "starts_on": "2025-01-01"},
])
async def test_agreement_validation(svc: RunningService, body: dict[str, Any]) -> None:
    partner = await register(svc)
    response = await svc.client.post(f"/v1/partners/{partner['id']}/agreements", json=body,
                                     headers=ADMIN)
    assert response.status_code == 422, response.text


async def test_agreement_refusals(svc: RunningService) -> None:
    body = {"kind": "annual", "starts_on": "2025-01-01", "ends_on": "2026-01-01"}
    missing = await svc.client.post("/v1/partners/ptn_nope/agreements", json=body, headers=ADMIN)
    assert missing.status_code == 404
    partner = await register(svc)
    await sign(svc, partner["id"])
    trial = await svc.client.post(f"/v1/partners/{partner['id']}/agreements", headers=ADMIN,
                                  json={**body, "kind": "trial"})
    assert trial.status_code == 409 and trial.json()["type"] == PROBLEM + "already-active"
    await svc.client.post(f"/v1/partners/{partner['id']}/terminate", json={"reason": "x"},
                          headers=ADMIN)
    refused = await svc.client.post(f"/v1/partners/{partner['id']}/agreements", json=body,
                                    headers=ADMIN)
    assert refused.status_code == 409 and refused.json()["type"] == PROBLEM + "partner-terminated"
    assert refused.json()["partner_status"] == "terminated"


async def test_signing_is_idempotent(svc: RunningService) -> None:
    partner = await register(svc)
    url = f"/v1/partners/{partner['id']}/agreements"
    body = {"kind": "annual", "starts_on": "2025-01-01", "ends_on": "2026-01-01",
            "annual_target_minor": 9_000_000}
    headers = {**ADMIN, "Idempotency-Key": "sign-1"}
    first = await svc.client.post(url, json=body, headers=headers)
    again = await svc.client.post(url, json=body, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert len(again.json()["agreements"]) == 1
    assert again.json()["agreements"][0]["annual_target_minor"] == 9_000_000


async def test_lifecycle(svc: RunningService) -> None:
    pid = (await register(svc))["id"]
    url = f"/v1/partners/{pid}"

    async def act(action: str, body: dict[str, str] | None = None) -> Any:
        return await svc.client.post(f"{url}/{action}", json=body, headers=ADMIN)

    refused = await act("suspend", {"reason": "late"})
    assert refused.status_code == 409 and refused.json()["type"] == PROBLEM + "cannot-suspend"
    await sign(svc, pid, "trial")
    suspended = await act("suspend", {"reason": "late"})
    assert suspended.status_code == 200
    assert suspended.json()["status"] == "suspended"
    assert suspended.json()["suspension_reason"] == "late"
    assert (await act("suspend", {"reason": "again"})).status_code == 409
    reinstated = await act("reinstate")
    assert reinstated.status_code == 200 and reinstated.json()["status"] == "trial"
    not_suspended = await act("reinstate")
    assert not_suspended.status_code == 409
    assert not_suspended.json()["type"] == PROBLEM + "not-suspended"
    assert (await act("terminate", {})).status_code == 422
    assert (await act("terminate", {"reason": "  "})).status_code == 422
    terminated = await act("terminate", {"reason": "fraud"})
    assert terminated.status_code == 200 and terminated.json()["status"] == "terminated"
    assert terminated.json()["agreements"][0]["state"] == "terminated"
    twice = await act("terminate", {"reason": "again"})
    assert twice.status_code == 409 and twice.json()["type"] == PROBLEM + "already-terminated"
    assert await stream_types(svc, pid) == [
        "PartnerRegistered", "AgreementSigned", "PartnerSuspended", "PartnerReinstated",
        "PartnerTerminated"]
    for action in ("suspend", "reinstate", "terminate"):
        missing = await svc.client.post(f"/v1/partners/ptn_nope/{action}", json={"reason": "x"},
                                        headers=ADMIN)
        assert missing.status_code == 404


async def test_changes_are_one_event_each(svc: RunningService) -> None:
    pid = (await register(svc))["id"]
    changed = await svc.client.patch(f"/v1/partners/{pid}", headers=ADMIN, json={
        "tier": "B", "territories": ["west"], "categories": ["pumps"]})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["tier"], changed.json()["territories"]) == ("B", ["west"])
    same = await svc.client.patch(f"/v1/partners/{pid}", headers=ADMIN, json={
        "tier": "B", "territories": ["west", "west"]})
    assert same.status_code == 200 and same.json() == changed.json()
    assert await stream_types(svc, pid) == [
        "PartnerRegistered", "PartnerTierChanged", "PartnerTerritoriesChanged"]
    for body in ({"tier": ""}, {"territories": []}, {"status": "active"}, {"categories": "x"}):
        assert (await svc.client.patch(f"/v1/partners/{pid}", headers=ADMIN,
                                       json=body)).status_code == 422
    assert (await svc.client.patch("/v1/partners/ptn_nope", headers=ADMIN,
                                   json={"tier": "C"})).status_code == 404
    partner_key = await issue_key(svc, "partner", pid)
    assert (await svc.client.patch(f"/v1/partners/{pid}", headers=partner_key,
                                   json={"tier": "C"})).status_code == 403


async def test_reads_by_role_and_partner_isolation(svc: RunningService) -> None:
    mine = (await register(svc, legal_id="L-MINE"))["id"]
    theirs = (await register(svc, legal_id="L-THEIRS"))["id"]
    for role in ("sales", "finance", "warehouse", "auditor"):
        headers = await issue_key(svc, role)
        assert (await svc.client.get(f"/v1/partners/{theirs}", headers=headers)).status_code == 200
    own = await issue_key(svc, "partner", mine)
    assert (await svc.client.get(f"/v1/partners/{mine}", headers=own)).json()["id"] == mine
    hidden = await svc.client.get(f"/v1/partners/{theirs}", headers=own)
    assert hidden.status_code == 404 and "L-THEIRS" not in hidden.text
    listed = (await svc.client.get("/v1/partners", headers=own)).json()
    assert [p["id"] for p in listed["items"]] == [mine]
    assert (await svc.client.get("/v1/partners/ptn_nope", headers=ADMIN)).status_code == 404


async def test_list_filters_and_pages(svc: RunningService) -> None:
    a = (await register(svc, legal_id="L1", tier="A", region="east"))["id"]
    b = (await register(svc, legal_id="L2", tier="B", region="east"))["id"]
    c = (await register(svc, legal_id="L3", tier="A", region="west"))["id"]
    await sign(svc, c)

    async def ids(query: str) -> list[str]:
        response = await svc.client.get(f"/v1/partners{query}", headers=ADMIN)
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()["items"]]

    assert await ids("?tier=A") == sorted([a, c])
    assert await ids("?region=east") == sorted([a, b])
    assert await ids("?status=active") == [c]
    assert await ids("?status=applied&tier=A") == [a]
    first = (await svc.client.get("/v1/partners?limit=2", headers=ADMIN)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = await ids(f"?limit=2&cursor={first['next_cursor']}")
    assert [p["id"] for p in first["items"]] + rest == sorted([a, b, c])
    for query in ("?status=sleeping", "?limit=0", "?limit=1000", "?cursor=a"):
        assert (await svc.client.get(f"/v1/partners{query}", headers=ADMIN)).status_code == 422
