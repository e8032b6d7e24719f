"""Request and response bodies of delivery's HTTP API (never the event classes)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    field_validator,
)

from libs.events.values import ReturnKind
from libs.runtime.http import RequestModel
from libs.runtime.params import no_control_characters

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})")


def _rfc3339_text(value: object) -> object:
    """Timestamps travel as RFC 3339 text with a time zone (never numbers or other formats)."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("expected an RFC 3339 timestamp with a time zone, e.g. 2026-03-01T10:00:00Z")
    return value


def _in_utc(value: datetime) -> datetime:
    """The moment in UTC; one that UTC cannot represent (year 1 east of UTC, 9999 west) is refused."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the timestamp is out of range once converted to UTC") from None


Clean = AfterValidator(no_control_characters)
Sku = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^\S+$"), Clean]
Qty = Annotated[int, Field(strict=True, gt=0, le=1_000_000_000)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Clean]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), Clean]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_in_utc)]


class LineIn(RequestModel):
    sku: Sku
    qty: Qty


class LinesIn(RequestModel):
    """Lines naming each sku once, each with a quantity above zero."""

    lines: list[LineIn] = Field(min_length=1, max_length=500)

    @field_validator("lines")
    @classmethod
    def _each_sku_once(cls, lines: list[LineIn]) -> list[LineIn]:
        skus = [line.sku for line in lines]
        if len(set(skus)) != len(skus):
            raise ValueError("name each sku once")
        return lines

    def quantities(self) -> dict[str, int]:
        return {line.sku: line.qty for line in self.lines}


class StockReceiptIn(RequestModel):
    sku: Sku
    qty: Qty
    reference: Text = Field(description="the delivery note; unique per sku (a repeat answers 409)")


class DispatchIn(LinesIn):
    carrier: Text
    tracking_no: Text


class DeliverIn(RequestModel):
    delivered_at: Timestamp = Field(description="RFC 3339 with a time zone")
    signed_by: Text


class ReturnIn(LinesIn):
    order_id: Text
    reason: LongText
    kind: ReturnKind


class ReceiveReturnIn(LinesIn):
    pass


class Line(BaseModel):
    sku: str
    qty: int


class StockOut(BaseModel):
    sku: str
    on_hand: int
    allocated: int
    available: int


class ReceiptOut(StockOut):
    qty: int
    reference: str
    received_on: str
    allocated_orders: list[str] = Field(description="backordered orders this receipt allocated")


class DispatchOut(BaseModel):
    dispatch_id: str
    lines: list[Line]
    carrier: str
    tracking_no: str
    dispatched_on: str
    complete: bool


class ShipmentOut(BaseModel):
    id: str
    order_id: str
    partner_id: str
    status: str = Field(description="pending, partially_dispatched, dispatched, delivered or cancelled")
    lines: list[Line]
    dispatched: list[Line]
    remaining: list[Line]
    complete: bool
    dispatches: list[DispatchOut]
    delivered_at: str | None
    signed_by: str | None


class ReturnOut(BaseModel):
    id: str
    order_id: str
    partner_id: str
    status: str = Field(description="requested or received")
    kind: ReturnKind
    reason: str
    lines: list[Line]
    received_lines: list[Line]
    requested_on: str
    received_on: str | None


class StockPage(BaseModel):
    items: list[StockOut]
    next_cursor: str | None


class ShipmentPage(BaseModel):
    items: list[ShipmentOut]
    next_cursor: str | None


class ReturnPage(BaseModel):
    items: list[ReturnOut]
    next_cursor: str | None
