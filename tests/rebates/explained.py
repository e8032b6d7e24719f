"""Checks every rebate amount the service shows against what explains it, and against projections.

- an accrual's ``components`` add up to ``accrued_minor`` and its sources to ``basis_minor``;
- a settlement's ``components`` add up to ``final_minor``, its sources to ``basis_minor`` (a
  final round; an interim lists the sources dated through its date), and ``payout_minor`` is
  ``final_minor - already_settled_minor``, where ``already_settled_minor`` is the sum of the
  payouts approved before it;
- projections' partner 360 and dashboard figures, folded by projections' own rules from the
  events rebates appended, equal the rebates service's accrued and settled totals to the fen.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select

from libs.events.codec import parse_json
from libs.events.rebates import RebateAccrued, SettlementApproved, SettlementProposed
from libs.store.schema import events
from services.projections.domain import rebates as projected
from tests.service_support import RunningService


async def _all(svc: RunningService, headers: dict[str, str], path: str) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await svc.client.get(path, params=params, headers=headers)).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def _projected(svc: RunningService) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Projections' accrual and settlement documents, folded from the rebates' events in order."""
    query = select(events.c.event_type, events.c.data, events.c.version, events.c.occurred_at).where(
        events.c.event_type.in_([RebateAccrued.TYPE, SettlementProposed.TYPE, SettlementApproved.TYPE])
    ).order_by(events.c.position)
    async with svc.ctx.db.read() as conn:
        rows = (await conn.execute(query)).all()
    accruals: dict[str, dict[str, Any]] = {}
    settlements: dict[str, dict[str, Any]] = {}
    for event_type, data, version, occurred_at in rows:
        if event_type == RebateAccrued.TYPE:
            event = RebateAccrued.model_validate(parse_json(data))
            key = projected.accrual_id(event.program_id, event.partner_id)
            doc = accruals.get(key) or projected.blank_accrual(event.program_id, event.partner_id)
            accruals[key] = projected.evolve_accrual(doc, event, stamp=[version, occurred_at])
        else:
            kind = SettlementProposed if event_type == SettlementProposed.TYPE else SettlementApproved
            settled = kind.model_validate(parse_json(data))
            doc = settlements.get(settled.settlement_id) or projected.blank_settlement(settled.settlement_id)
            settlements[settled.settlement_id] = projected.evolve_settlement(doc, settled)
    return list(accruals.values()), list(settlements.values())


async def assert_explained(svc: RunningService, finance: dict[str, str]) -> None:
    accruals = await _all(svc, finance, "/v1/accruals")
    settlements = await _all(svc, finance, "/v1/settlements")
    for accrual in accruals:
        assert sum(c["amount_minor"] for c in accrual["components"]) == accrual["accrued_minor"], accrual
        assert sum(s["amount_minor"] for s in accrual["sources"]) == accrual["basis_minor"], accrual
    approved: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for settlement in settlements:
        parts = settlement["components"]
        assert sum(c["amount_minor"] for c in parts) == settlement["final_minor"], settlement
        assert sum(s["amount_minor"] for s in settlement["sources"]) == settlement["basis_minor"], settlement
        assert settlement["payout_minor"] == settlement["final_minor"] - settlement["already_settled_minor"]
        if settlement["status"] == "approved":
            approved[(settlement["program_id"], settlement["partner_id"])].append(settlement)
    for accrual in accruals:
        paid = approved[(accrual["program_id"], accrual["partner_id"])]
        assert accrual["settled_minor"] == sum(s["payout_minor"] for s in paid), accrual

    projected_accruals, projected_settlements = await _projected(svc)
    for partner_id in {a["partner_id"] for a in accruals}:
        mine = [a for a in accruals if a["partner_id"] == partner_id]
        assert projected.totals(
            [a for a in projected_accruals if a["partner_id"] == partner_id],
            [s for s in projected_settlements if s["partner_id"] == partner_id]) == {
            "accrued_minor": sum(a["accrued_minor"] for a in mine),
            "settled_minor": sum(a["settled_minor"] for a in mine)}, partner_id
    dashboard = projected.by_program(projected_accruals, projected_settlements, {})
    by_program: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for accrual in accruals:
        by_program[accrual["program_id"]][0] += accrual["accrued_minor"]
        by_program[accrual["program_id"]][1] += accrual["settled_minor"]
    assert {row["program_id"]: [row["accrued_minor"], row["settled_minor"]] for row in dashboard} == dict(
        by_program)
