"""Request bodies of the credit API (responses are the documents and views the application builds)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt

from libs.events.values import TermsKind
from libs.runtime.http import RequestModel
from libs.runtime.params import StrictDate

MAX_MINOR = 10**15
Amount = Annotated[StrictInt, Field(gt=0, le=MAX_MINOR, description="integer minor units, > 0")]
Reason = Annotated[str, Field(min_length=1, max_length=500)]
Ref = Annotated[str, Field(min_length=1, max_length=100)]


class TermsBody(RequestModel):
    kind: TermsKind
    credit_limit_minor: Annotated[StrictInt, Field(ge=0, le=MAX_MINOR)] | None = None
    term_days: Annotated[StrictInt, Field(ge=0, le=3650)] | None = None


class ReasonBody(RequestModel):
    reason: Reason


class Allocation(RequestModel):
    invoice_id: Ref
    amount_minor: Amount


class PaymentBody(RequestModel):
    partner_id: Ref
    amount_minor: Amount
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    bank_ref: Ref
    received_on: StrictDate
    allocations: Annotated[list[Allocation], Field(max_length=500)] | None = None


class WriteOffBody(RequestModel):
    amount_minor: Amount
    reason: Reason


class ConfirmBody(RequestModel):
    to: StrictDate
    closing_minor: Annotated[StrictInt, Field(ge=-MAX_MINOR, le=MAX_MINOR)]


class DisputeBody(RequestModel):
    to: StrictDate
    reason: Reason
