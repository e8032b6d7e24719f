"""Small value objects and enumerations shared by the event contracts.

Value objects are frozen and reject unknown fields when written, and drop them
when read, like the events that carry them. Money is ``int`` minor units (fields
ending ``_minor``), rates are ``int`` basis points (fields ending ``_bp``); the
currency lives on the enclosing event.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from libs.events.base import Strict

PartnerKind = Literal["distributor", "agent", "reseller", "system_integrator"]
PartnerStatus = Literal["applied", "trial", "active", "suspended", "terminated"]
Role = Literal["admin", "sales", "finance", "warehouse", "auditor", "partner"]
TermsKind = Literal["prepaid", "credit"]
AgreementKind = Literal["trial", "annual"]
ReturnKind = Literal["refund", "exchange", "repair"]
ShipmentPurpose = Literal["sale", "replacement", "repair"]
"""Why a shipment ships: ``sale`` (an approved order's goods, invoiced on each dispatch, which
ships the order), ``replacement`` (an exchange return's new goods) or ``repair`` (the partner's
repaired goods going back); the last two move no money and leave the order's status alone."""
HoldReason = Literal["over_limit", "overdue", "partner_suspended"]
FundsReviewOutcome = Literal["within_limit", "prepaid", "released"]
CreditNoteSource = Literal["return", "rebate", "coop"]
"""``coop``: an approved co-op advertising claim paid from the partner's fund."""
ProgramBasis = Literal["invoiced", "collected"]
ProgramMode = Literal["retroactive", "incremental"]
ProgramKind = Literal["volume", "coop"]
"""``volume``: a rebate settled at period end; ``coop``: a co-op advertising fund paid out by claims."""
Rollup = Literal["self", "parent", "both"]
"""Whose basis a sub-dealer's sales count toward: its own (``self``), its parent's in effect on the
sale's date (``parent``; a partner without a parent then counts for itself) or both."""
SourceKind = Literal["invoice", "payment", "return", "bonus"]
"""``bonus``: news that moved a bonus without moving the basis (an invoice paid on time); amount 0."""

DEFAULT_CURRENCY = "CNY"


def half_up(numerator: int, denominator: int = 1) -> int:
    """``numerator / denominator`` rounded half away from zero (``denominator`` > 0): the one
    rounding of the system (money to the minor unit, rates and ratios to the basis point)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    if numerator < 0:
        return -half_up(-numerator, denominator)
    return (2 * numerator + denominator) // (2 * denominator)


class ValueObject(Strict):
    """An immutable value inside an event payload (strict to write, tolerant to read)."""


class PaymentTerms(ValueObject):
    """How a partner pays: prepaid, or on credit up to a limit within a term in days."""

    kind: TermsKind
    credit_limit_minor: int | None = None
    term_days: int | None = None


class SkuQty(ValueObject):
    """A quantity of one product."""

    sku: str
    qty: int


class SkuPrice(ValueObject):
    """A tier's fixed unit price for one product (overrides the tier discount)."""

    sku: str
    unit_price_minor: int


class OrderLine(ValueObject):
    """A priced order line; the price is fixed at placement (half-up per line)."""

    sku: str
    qty: int
    category: str
    unit_price_minor: int
    line_total_minor: int


class InvoiceLine(ValueObject):
    """A priced line of an invoice (or of a credit note for returned goods)."""

    sku: str
    category: str
    qty: int
    unit_price_minor: int
    line_total_minor: int


class SourceRef(ValueObject):
    """A document that moved a rebate basis; ``amount_minor`` is signed (returns are negative)."""

    kind: SourceKind
    ref: str
    amount_minor: int
    partner_id: str | None = None
    """The sub-dealer whose document it is, when it counts toward its parent (absent: the rebate's own)."""


class RebateTier(ValueObject):
    """A volume band: from ``from_minor`` of basis on, the rate is ``rate_bp``."""

    from_minor: int
    rate_bp: int


class Eligibility(ValueObject):
    """Who a program applies to; an empty list means no restriction on that axis."""

    tiers: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    partner_ids: list[str] = Field(default_factory=list)


class GrowthRule(ValueObject):
    """Growth bonus: ``rate_bp`` when basis beats the baseline period by ``min_growth_bp``."""

    baseline_from: date
    baseline_to: date
    min_growth_bp: int
    rate_bp: int


class TimelinessRule(ValueObject):
    """Timeliness bonus: ``rate_bp`` when the on-time share of paid invoices reaches the bar."""

    min_on_time_bp: int
    rate_bp: int


class CoopRule(ValueObject):
    """A co-op fund: ``share_bp`` of invoiced sales (net of returns) accrues; a claim is matched at
    ``match_bp`` of its spend up to the fund's balance; what is unused expires after ``expires_on``."""

    share_bp: int
    match_bp: int
    expires_on: date
