"""Request bodies (unknown fields answer 422). Responses are the documents the application writes."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StrictInt, StringConstraints, model_validator

from libs.events.values import DEFAULT_CURRENCY
from libs.runtime.http import RequestModel
from libs.runtime.params import StrictDate, no_control_characters

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_MONEY_MINOR = 10**12
MAX_QTY = 10**6
Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
"""A sku or a tier: letters, digits, ``.``, ``_``, ``-`` (at most 64)."""
Clean = AfterValidator(no_control_characters)
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Clean]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Price = Annotated[StrictInt, Field(gt=0, le=MAX_MONEY_MINOR)]


class ProductIn(RequestModel):
    sku: Code
    name: Text
    category: Text
    list_price_minor: Price
    min_price_minor: Annotated[StrictInt, Field(ge=0, le=MAX_MONEY_MINOR)] | None = None
    currency: Currency = DEFAULT_CURRENCY

    @model_validator(mode="after")
    def _minimum_within_list_price(self) -> ProductIn:
        if self.min_price_minor is not None and self.min_price_minor > self.list_price_minor:
            raise ValueError("min_price_minor must not exceed list_price_minor")
        return self


class OverrideIn(RequestModel):
    sku: Code
    unit_price_minor: Price


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), Clean]


class PriceListIn(RequestModel):
    effective_from: StrictDate
    discount_bp: Annotated[StrictInt, Field(ge=0, le=10_000)]
    overrides: Annotated[list[OverrideIn], Field(max_length=1000)] = []
    override_reason: Reason | None = Field(
        None, description="Required when the version takes effect sooner than the notice period.")


PartnerId = Annotated[str, StringConstraints(min_length=1, max_length=100), Clean]


class LineIn(RequestModel):
    sku: Code
    qty: Annotated[StrictInt, Field(gt=0, le=MAX_QTY)]


def _one_line_each(lines: list[LineIn] | list[OverrideIn]) -> None:
    skus = [line.sku for line in lines]
    if len(set(skus)) != len(skus):
        raise ValueError("each sku may appear on one line only")


class ShipToIn(RequestModel):
    region: Text
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), Clean] | None = None


class OrderIn(RequestModel):
    partner_ref: Text
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=200)]
    ship_to: ShipToIn
    partner_id: PartnerId | None = None
    deal_id: Annotated[str, StringConstraints(min_length=1, max_length=100), Clean] | None = Field(
        None, description="An approved deal registration of the partner that prices the order.")

    @model_validator(mode="after")
    def _one_line_per_sku(self) -> OrderIn:
        _one_line_each(self.lines)
        return self


class CancelIn(RequestModel):
    reason: Reason


class DealIn(RequestModel):
    end_customer: Text
    customer_code: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{18}$")] | None = Field(
        None, description="The end customer's unified social credit code (18 characters), if known.")
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=200)]
    expires_on: StrictDate
    partner_id: PartnerId | None = None

    @model_validator(mode="after")
    def _one_line_per_sku(self) -> DealIn:
        _one_line_each(self.lines)
        return self


class DealApprovalIn(RequestModel):
    lines: Annotated[list[OverrideIn], Field(min_length=1, max_length=200)]

    @model_validator(mode="after")
    def _one_line_per_sku(self) -> DealApprovalIn:
        _one_line_each(self.lines)
        return self


class RejectIn(RequestModel):
    reason: Reason
