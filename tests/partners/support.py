"""Request helpers of the partners suites."""

from __future__ import annotations

from typing import Any

from tests.service_support import ADMIN, RunningService


def partner_body(**changes: Any) -> dict[str, Any]:
    """A valid registration; ``changes`` replace fields (``None`` removes one)."""
    body: dict[str, Any] = {
        "name": "Huadong Trading Co.", "legal_id": "91310000MA1FL0001X", "kind": "distributor",
        "tier": "A", "region": "east", "territories": ["east", "east/shanghai"],
        "categories": ["pumps"], "payment_terms": {"kind": "credit", "credit_limit_minor": 500_000,
                                                   "term_days": 30},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


async def register(svc: RunningService, **changes: Any) -> dict[str, Any]:
    response = await svc.client.post("/v1/partners", json=partner_body(**changes), headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


async def sign(svc: RunningService, partner_id: str, kind: str = "annual",
               starts_on: str = "2025-01-01", ends_on: str = "2025-12-31") -> dict[str, Any]:
    response = await svc.client.post(
        f"/v1/partners/{partner_id}/agreements",
        json={"kind": kind, "starts_on": starts_on, "ends_on": ends_on}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


async def issue_key(svc: RunningService, role: str, partner_id: str | None = None) -> dict[str, str]:
    """Issue a key and answer the headers that use it."""
    body = {"role": role, **({"partner_id": partner_id} if partner_id else {})}
    response = await svc.client.post("/v1/keys", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['secret']}"}
