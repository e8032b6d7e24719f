"""A partner's parent changes from a date on, never backdated (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime

from libs.events.codec import parse_json
from tests.service_support import ADMIN, RunningService

from .support import register

PROBLEM = "https://o2c.dev/problems/"


def fix_today(svc: RunningService) -> None:
    svc.ctx.clock = lambda: datetime(2026, 3, 20, 12, tzinfo=UTC)


async def patch(svc: RunningService, partner_id: str, body: dict[str, object]) -> object:
    return await svc.client.patch(f"/v1/partners/{partner_id}", json=body, headers=ADMIN)


async def test_a_parent_change_is_its_own_dated_event(svc: RunningService) -> None:
    fix_today(svc)
    old = await register(svc, legal_id="L-OLD")
    new = await register(svc, legal_id="L-NEW")
    sub = await register(svc, legal_id="L-SUB", kind="reseller", parent_id=old["id"])

    moved = await patch(svc, sub["id"], {"parent_id": new["id"], "effective_from": "2026-04-01"})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["parent_id"], moved.json()["parent_since"]) == (new["id"], "2026-04-01")
    events = [e for e in await svc.ctx.store.load(f"partner-{sub['id']}")]
    assert [e.event_type for e in events] == ["PartnerRegistered", "PartnerParentChanged"]
    assert parse_json(events[-1].data) == {"partner_id": sub["id"], "from_parent_id": old["id"],
                                           "to_parent_id": new["id"], "effective_from": "2026-04-01"}
    same = await patch(svc, sub["id"], {"parent_id": new["id"]})
    assert same.status_code == 200 and len(await svc.ctx.store.load(f"partner-{sub['id']}")) == 2
    listed = (await svc.client.get(f"/v1/partners?parent_id={new['id']}", headers=ADMIN)).json()
    assert [p["id"] for p in listed["items"]] == [sub["id"]]
    # an explicit null removes the parent, today by default: not before the last change's date
    early = await patch(svc, sub["id"], {"parent_id": None})
    assert early.status_code == 422 and early.json()["type"] == PROBLEM + "invalid-effective-date"
    removed = await patch(svc, sub["id"], {"parent_id": None, "effective_from": "2026-05-01"})
    assert removed.status_code == 200 and removed.json()["parent_id"] is None


async def test_a_parent_change_is_never_backdated_nor_circular(svc: RunningService) -> None:
    fix_today(svc)
    parent = await register(svc, legal_id="L-P")
    sub = await register(svc, legal_id="L-S", parent_id=parent["id"])
    other = await register(svc, legal_id="L-O")
    cases = [
        ({"parent_id": other["id"], "effective_from": "2026-03-19"}, "invalid-effective-date"),
        ({"parent_id": sub["id"]}, "invalid-parent"),
        ({"parent_id": "ptn_nobody"}, "unknown-parent"),
        ({"effective_from": "2026-04-01"}, "validation"),
    ]
    for body, slug in cases:
        response = await patch(svc, sub["id"], body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["type"] == PROBLEM + slug, (body, response.text)
    circular = await patch(svc, parent["id"], {"parent_id": sub["id"]})
    assert circular.status_code == 422 and circular.json()["type"] == PROBLEM + "invalid-parent"
    assert len(await svc.ctx.store.load(f"partner-{sub['id']}")) == 1
    today = await patch(svc, sub["id"], {"parent_id": other["id"]})
    assert today.json()["parent_since"] == "2026-03-20"
