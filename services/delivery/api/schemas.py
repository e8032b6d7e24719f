"""Request and response bodies of delivery's HTTP API (never the event classes)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Protocol, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from libs.events.values import ReturnKind, ShipmentPurpose
from libs.runtime.http import RequestModel
from libs.runtime.params import no_control_characters
from services.delivery.domain.returns import Outcome

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


class _NamesSku(Protocol):
    @property
    def sku(self) -> str: ...


L = TypeVar("L", bound=_NamesSku)


def skus_named_once(lines: list[L]) -> list[L]:
    """Request lines name each sku once (422 otherwise)."""
    skus = [line.sku for line in lines]
    if len(set(skus)) != len(skus):
        raise ValueError("name each sku once")
    return lines


SkuLines = Annotated[list[L], Field(min_length=1, max_length=500), AfterValidator(skus_named_once)]
"""One to 500 request lines, each sku named once."""


class LineIn(RequestModel):
    sku: Sku
    qty: Qty


class LinesIn(RequestModel):
    """Lines naming each sku once, each with a quantity above zero."""

    lines: SkuLines[LineIn]

    def quantities(self) -> dict[str, int]:
        return {line.sku: line.qty for line in self.lines}


class StockReceiptIn(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "sku": "RTR-5G-01", "qty": 200, "reference": "DN-20261127-0042"}]})

    sku: Sku
    qty: Qty
    reference: Text = Field(description="the delivery note; unique per sku (a repeat answers 409)")


class DispatchIn(LinesIn):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "lines": [{"sku": "RTR-5G-01", "qty": 6}], "carrier": "SF Express",
        "tracking_no": "SF1402783365581"}]})

    carrier: Text
    tracking_no: Text


class DeliverIn(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "delivered_at": "2026-11-29T15:20:00+08:00", "signed_by": "Wang Lei"}]})

    delivered_at: Timestamp = Field(description="RFC 3339 with a time zone")
    signed_by: Text


class ReturnIn(LinesIn):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "order_id": "ord_01JDX5V6R7", "lines": [{"sku": "RTR-5G-01", "qty": 1}],
        "reason": "unit fails to boot", "kind": "refund"}]})

    order_id: Text
    reason: LongText
    kind: ReturnKind


class ReceiveReturnIn(LinesIn):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "lines": [{"sku": "RTR-5G-01", "qty": 1}]}]})

    pass


Count = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)]


class InspectLineIn(RequestModel):
    """What became of the received units of one sku (together, every received unit of it)."""

    sku: Sku
    restock: Count = Field(0, description="units sellable again (refund and exchange returns)")
    scrap: Count = Field(0, description="units scrapped (refund and exchange returns)")
    repaired: Count = Field(0, description="units repaired for their partner (repair returns)")

    @model_validator(mode="after")
    def _some_units(self) -> InspectLineIn:
        if not self.restock + self.scrap + self.repaired:
            raise ValueError("a line accounts for at least one unit")
        return self


class InspectReturnIn(RequestModel):
    """The outcome of every received sku, each named once."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "lines": [{"sku": "RTR-5G-01", "restock": 0, "scrap": 1}]}]})

    lines: SkuLines[InspectLineIn]

    def outcomes(self) -> dict[str, Outcome]:
        return {line.sku: Outcome(restock=line.restock, scrap=line.scrap, repaired=line.repaired)
                for line in self.lines}


class Line(BaseModel):
    sku: str
    qty: int


class StockOut(BaseModel):
    sku: str
    on_hand: int = Field(description="sellable goods in the warehouse")
    allocated: int
    available: int
    in_inspection: int = Field(0, description="returned goods at the inspection location, not sellable")


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
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "shp_01JDX6W7X8", "order_id": "ord_01JDX5V6R7", "partner_id": "ptn_01JDX4Q2M3",
        "purpose": "sale", "return_id": None, "status": "partially_dispatched",
        "lines": [{"sku": "RTR-5G-01", "qty": 10}], "dispatched": [{"sku": "RTR-5G-01", "qty": 6}],
        "remaining": [{"sku": "RTR-5G-01", "qty": 4}], "complete": False,
        "dispatches": [{"dispatch_id": "dsp_01JDX6Z9Y8", "lines": [{"sku": "RTR-5G-01", "qty": 6}],
        "carrier": "SF Express", "tracking_no": "SF1402783365581", "dispatched_on": "2026-11-28",
        "complete": False}], "delivered_at": None, "signed_by": None}]})

    id: str
    order_id: str
    partner_id: str
    purpose: ShipmentPurpose = Field(
        "sale", description="sale (invoiced), replacement (an exchange's) or repair (repaired goods back)")
    return_id: str | None = Field(None, description="the return a replacement or repair shipment serves")
    status: str = Field(description="pending, partially_dispatched, dispatched, delivered or cancelled")
    lines: list[Line]
    dispatched: list[Line]
    remaining: list[Line]
    complete: bool
    dispatches: list[DispatchOut]
    delivered_at: str | None
    signed_by: str | None


class InspectionOut(BaseModel):
    restocked: list[Line]
    scrapped: list[Line]
    repaired: list[Line]


class GoodsDispatchOut(DispatchOut):
    """A dispatch of the return's shipment (``shipment_id``)."""

    shipment_id: str


class ReturnOut(BaseModel):
    id: str
    order_id: str
    partner_id: str
    status: str = Field(description="requested, received, inspected, replacement_shipped (exchange) "
                                    "or repaired_shipped (repair)")
    kind: ReturnKind
    reason: str
    lines: list[Line]
    received_lines: list[Line]
    requested_on: str
    received_on: str | None
    inspection: InspectionOut | None = None
    inspected_on: str | None = None
    shipment_ids: list[str] = Field([], description="the replacement or repair shipment")
    goods_dispatched: list[GoodsDispatchOut] = Field(
        [], description="dispatches of that shipment: where the partner's goods are")


class StockPage(BaseModel):
    items: list[StockOut]
    next_cursor: str | None


class ShipmentPage(BaseModel):
    items: list[ShipmentOut]
    next_cursor: str | None


class ReturnPage(BaseModel):
    items: list[ReturnOut]
    next_cursor: str | None
