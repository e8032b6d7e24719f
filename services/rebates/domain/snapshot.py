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
from services.rebates.domain.rebate import RebateState, Settlement

SHAPE = "rebates.rebate/2"


def _settlement(s: Settlement) -> dict[str, Any]:
    return {**asdict(s), "sources": [source.model_dump(mode="json") for source in s.sources],
            "through": s.through.isoformat() if s.through else None}


def encode(state: RebateState) -> dict[str, Any]:
    return {**asdict(state), "settlements": [_settlement(s) for s in state.settlements]}


def decode(body: dict[str, Any]) -> RebateState:
    settlements = tuple(
        Settlement(**{**s, "sources": tuple(SourceRef.model_validate(source) for source in s["sources"]),
                      "through": date.fromisoformat(s["through"]) if s["through"] else None})
        for s in body["settlements"])
    return RebateState(**{**body, "settlements": settlements})
