"""Quantities per sku: the small arithmetic every delivery rule is written in.

A ``Tally`` maps sku -> qty and keeps the order in which skus first appeared, so
events list lines in the order the order (or the dispatch) named them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from libs.events.values import SkuQty

Tally = dict[str, int]


class Counted(Protocol):
    """Anything that names a sku and a quantity: an order line, a shipped line, a returned line."""

    @property
    def sku(self) -> str: ...

    @property
    def qty(self) -> int: ...


def tally(lines: Iterable[Counted]) -> Tally:
    """Sum quantities per sku (a sku named twice counts once, with both quantities)."""
    total: Tally = {}
    for line in lines:
        total[line.sku] = total.get(line.sku, 0) + line.qty
    return total


def as_lines(quantities: Mapping[str, int]) -> list[SkuQty]:
    """The non-zero quantities as event lines, in tally order."""
    return [SkuQty(sku=sku, qty=qty) for sku, qty in quantities.items() if qty]


def minus(left: Mapping[str, int], right: Mapping[str, int]) -> Tally:
    """``left - right`` per sku of ``left`` (never below zero)."""
    return {sku: max(0, qty - right.get(sku, 0)) for sku, qty in left.items()}


def plus(left: Mapping[str, int], right: Mapping[str, int]) -> Tally:
    total = dict(left)
    for sku, qty in right.items():
        total[sku] = total.get(sku, 0) + qty
    return total


def frozen(quantities: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """A hashable, ordered copy for frozen aggregate state."""
    return tuple(quantities.items())


def from_json(lines: Iterable[Mapping[str, Any]]) -> Tally:
    """A tally from lines stored in a document (``[{"sku", "qty"}]``)."""
    return tally(SkuQty(sku=line["sku"], qty=line["qty"]) for line in lines)
