"""A rebate's state as JSON for snapshots, and back: integers stay integers.

The rebate stream of a (program, partner) gains an event with every invoice,
payment and return its program counts, so loads start from a snapshot. Change
``SHAPE`` with any change to ``RebateState``, ``Settlement`` or this codec:
snapshots of another shape are then ignored, never misread.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

from libs.events.values import SourceRef
from services.rebates.domain.coop import Claim, Fund
from services.rebates.domain.rebate import RebateState, Settlement

SHAPE = "rebates.rebate/3"


def _settlement(s: Settlement) -> dict[str, Any]:
    return {**asdict(s), "sources": [source.model_dump(mode="json") for source in s.sources],
            "through": s.through.isoformat() if s.through else None}


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _text(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _fund(fund: Fund) -> dict[str, Any]:
    return {"claims": [{**asdict(c), "filed_on": c.filed_on.isoformat(), "decided_on": _text(c.decided_on)}
                       for c in fund.claims],
            "expired_minor": fund.expired_minor, "expired_on": _text(fund.expired_on)}


def encode(state: RebateState) -> dict[str, Any]:
    return {**asdict(state), "settlements": [_settlement(s) for s in state.settlements],
            "fund": _fund(state.fund)}


def decode(body: dict[str, Any]) -> RebateState:
    settlements = tuple(
        Settlement(**{**s, "sources": tuple(SourceRef.model_validate(source) for source in s["sources"]),
                      "through": date.fromisoformat(s["through"]) if s["through"] else None})
        for s in body["settlements"])
    stored = body["fund"]
    fund = Fund(
        claims=tuple(Claim(**{**c, "filed_on": date.fromisoformat(c["filed_on"]),
                              "decided_on": _day(c["decided_on"])}) for c in stored["claims"]),
        expired_minor=stored["expired_minor"], expired_on=_day(stored["expired_on"]))
    return RebateState(**{**body, "settlements": settlements, "fund": fund})
