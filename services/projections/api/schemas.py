"""Response models of the projections' HTTP API (never the event classes)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.runtime.audit import StoreVerification
from libs.runtime.http import RequestModel
from libs.runtime.params import Clean
from services.projections.domain.webhooks import WEBHOOK_TYPES, WebhookType


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


class SubDealerSales(BaseModel):
    partner_id: str
    name: str | None
    sales_minor: int = Field(description="sold while this partner was its parent")


class ChannelSales(BaseModel):
    """Own sales, the sub-dealers' (by the parent in effect on each sale's date) and both."""

    own_minor: int
    sub_dealers_minor: int
    total_minor: int
    sub_dealers: list[SubDealerSales]


class CoopClaim(BaseModel):
    claim_id: str
    status: str
    amount_minor: int | None = None
    approved_minor: int = 0
    filed_on: str | None = None


class CoopFund(BaseModel):
    program_id: str
    accrued_minor: int
    paid_minor: int
    expired_minor: int
    expired_on: str | None
    balance_minor: int
    claims: list[CoopClaim]


class CoopFunds(BaseModel):
    """The partner's co-op advertising funds: balance, claims and expiries."""

    balance_minor: int
    paid_minor: int
    expired_minor: int
    funds: list[CoopFund]


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
    as_of: str | None = None
    """Set when the view was asked ``as_of`` a day."""
    sales: ChannelSales | None = None
    coop: CoopFunds | None = None
    deals: OrderCounts = Field(description="deal registrations by status (refused: a channel conflict)")


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


class WebhookIn(RequestModel):
    """A webhook registration: where to push, the secret to sign with, which event types."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "url": "https://erp.huatong.example/o2c/events", "secret": "whsec-7f3a9c1e5b2d8f40",
        "events": ["order.status_changed", "invoice.issued", "invoice.paid"],
        "partner_id": "ptn_01JDX4Q2M3"}]})

    url: Annotated[str, StringConstraints(min_length=1, max_length=2000), Clean] = Field(
        description="https:// endpoint (plain http:// only to loopback hosts where the service allows it)")
    secret: Annotated[str, StringConstraints(min_length=16, max_length=200), Clean] = Field(
        description="Shared secret the pushes are signed with (HMAC-SHA256); never answered back")
    events: Annotated[list[WebhookType], Field(min_length=1, max_length=len(WEBHOOK_TYPES))]
    partner_id: Annotated[str, StringConstraints(min_length=1, max_length=200), Clean] | None = Field(
        None, description="The partner whose events are pushed: required for admin, implied for a partner")


class Webhook(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "whk_01JDXB3C4D", "partner_id": "ptn_01JDX4Q2M3",
        "url": "https://erp.huatong.example/o2c/events", "events": ["order.status_changed",
        "invoice.issued", "invoice.paid"], "created_at": "2026-11-27T09:40:00.000000Z"}]})

    id: str
    partner_id: str
    url: str
    events: list[str]
    created_at: str


class Webhooks(BaseModel):
    items: list[Webhook]
    next_cursor: str | None


class DeliveryAttempt(BaseModel):
    attempt: int
    at: str
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookDelivery(BaseModel):
    id: str
    webhook_id: str
    event_id: str = Field(description="The source event's id: the same on every retry and redelivery")
    type: str
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    created_at: str
    next_attempt_at: str | None
    last_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: str | None
    payload: dict[str, Any]
    log: list[DeliveryAttempt]


class WebhookDeliveries(BaseModel):
    items: list[WebhookDelivery]
    next_cursor: str | None


class FirstBad(BaseModel):
    service: str = Field(description="The first service whose store failed.")
    position: int | None = Field(description="Its first bad position (null: it could not be verified).")


class SystemVerification(BaseModel):
    """Every service's store and the archive, verified (``GET /v1/audit/verify``)."""

    ok: bool = Field(description="True when every store verified.")
    mode: str = Field(description="keyed, unkeyed, or mixed when the stores disagree.")
    checked: int = Field(description="Events checked, over every store.")
    first_bad: FirstBad | None = Field(None, description="Where the first failure is; absent when ok.")
    services: dict[str, StoreVerification] = Field(description="Each store's report, by service "
                                                               "(projections: the archive).")


class Report(BaseModel):
    """What every report answers besides its rows: the filters it applied."""

    model_config = ConfigDict(populate_by_name=True)

    partner_id: str | None = None
    region: str | None = None
    tier: str | None = None
    next_cursor: str | None = None


class PartnerRow(BaseModel):
    partner_id: str
    name: str | None
    region: str | None
    tier: str | None
    currency: str


class ScorecardFigures(BaseModel):
    target_minor: int | None
    sales_minor: int
    invoiced_minor: int
    returned_minor: int
    attainment_bp: int | None
    orders: int
    invoices_due: int
    invoices_on_time: int
    on_time_bp: int | None
    invoices_paid: int
    days_to_pay_avg: int | None
    returns_rate_bp: int | None
    violations: int


class ScorecardRow(PartnerRow, ScorecardFigures):
    """With ``compare``: each figure again as ``previous_<figure>``, and ``sales_growth_bp``."""

    model_config = ConfigDict(extra="allow")

    sales_growth_bp: int | None = None


class Scorecards(Report):
    from_: str = Field(alias="from")
    to: str
    compare: str | None
    compare_from: str | None
    compare_to: str | None
    items: list[ScorecardRow]


class UtilisationRow(PartnerRow):
    terms: str | None
    credit_limit_minor: int
    term_days: int | None
    exposure_minor: int
    available_minor: int | None
    utilisation_bp: int | None
    receivables_minor: int
    invoiced_minor: int
    days: int
    dso_days: int | None


class CreditUtilisation(Report):
    as_of: str
    from_: str = Field(alias="from")
    to: str
    items: list[UtilisationRow]


class RebateAmounts(BaseModel):
    program_id: str
    name: str | None
    accrued_minor: int
    settled_minor: int
    proposed_minor: int
    outstanding_minor: int


class RebateRow(RebateAmounts):
    partner_id: str
    currency: str


class ProgramTotals(RebateAmounts):
    partners: int


class RebatesReport(Report):
    as_of: str
    program_id: str | None
    items: list[RebateRow]
    programs: list[ProgramTotals]


class CoopFundRow(PartnerRow):
    """A partner's co-op fund in one program: what accrued, what approved claims paid out as
    credit notes, what expired unused, and the balance left to claim against."""

    program_id: str
    program: str | None
    accrued_minor: int
    paid_minor: int
    expired_minor: int
    balance_minor: int
    status: Literal["open", "expired"]
    expired_on: str | None
    claims: int
    pending_claims: int


class CoopFundTotals(BaseModel):
    accrued_minor: int
    paid_minor: int
    expired_minor: int
    balance_minor: int


class CoopFundsReport(Report):
    items: list[CoopFundRow]
    totals: CoopFundTotals


class AgingRow(BaseModel):
    """The open amount per bucket: the fields ``buckets`` names (``current_minor``,
    ``d1_30_minor``, ... by default), then the money on account (``on_account_minor``:
    unapplied payments and credit notes) and ``total_minor`` = buckets - on account =
    the balance."""

    model_config = ConfigDict(extra="allow")

    partner_id: str
    name: str | None
    currency: str
    on_account_minor: int
    total_minor: int


class Aging(Report):
    as_of: str
    basis: str
    buckets: list[str]
    items: list[AgingRow]
    totals: dict[str, int]


class SalesRow(BaseModel):
    key: str
    amount_minor: int
    orders: int
    invoiced_minor: int
    returned_minor: int
    currency: str
    previous_amount_minor: int | None = None
    growth_bp: int | None = None


class Sales(Report):
    group_by: str
    from_: str | None = Field(None, alias="from")
    to: str | None
    compare: str | None
    items: list[SalesRow]
    total_minor: int
    compare_from: str | None = None
    compare_to: str | None = None
    previous_total_minor: int | None = None
    growth_bp: int | None = None
