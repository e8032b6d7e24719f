"""Response models of the projections' HTTP API (never the event classes)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TimelineEvent(BaseModel):
    service: str
    type: str
    occurred_at: str
    actor: str
    data: dict[str, Any]
    event_id: str
    causation_id: str | None
    correlation_id: str
    stream_id: str
    stream_version: int


class OrderTimeline(BaseModel):
    order_id: str
    partner_id: str | None
    events: list[TimelineEvent]


class OrderCounts(BaseModel):
    count: int
    by_status: dict[str, int]


class RebateTotals(BaseModel):
    accrued_minor: int
    settled_minor: int


class Partner360(BaseModel):
    partner_id: str
    name: str | None
    status: str | None
    tier: str | None
    region: str | None
    parent_id: str | None
    currency: str
    orders: OrderCounts
    sales_minor: int
    invoiced_minor: int
    exposure_minor: int
    open_invoices_minor: int
    debit_notes_minor: int
    open_debit_notes_minor: int
    balance_minor: int
    overdue_minor: int
    received_minor: int
    credit_notes_minor: int
    rebates: RebateTotals
    deals: OrderCounts = Field(description="deal registrations by status (refused: a channel conflict)")


class AgingBuckets(BaseModel):
    current_minor: int
    d1_30_minor: int
    d31_60_minor: int
    d61_90_minor: int
    d90_plus_minor: int
    total_minor: int


class AgingRow(AgingBuckets):
    partner_id: str
    name: str | None


class Aging(BaseModel):
    as_of: str
    items: list[AgingRow]
    totals: AgingBuckets
    next_cursor: str | None


class SalesRow(BaseModel):
    key: str
    amount_minor: int
    orders: int
    invoiced_minor: int
    returned_minor: int


class Sales(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    group_by: str
    from_: str | None = Field(None, alias="from")
    to: str | None
    items: list[SalesRow]
    total_minor: int
    next_cursor: str | None


class AuditEvent(TimelineEvent):
    received_seq: int
    position: int | None
    schema_version: int
    stream_type: str
    stream_hash: str | None
    order_id: str | None
    partner_id: str | None


class AuditPage(BaseModel):
    items: list[AuditEvent]
    next_cursor: str | None
