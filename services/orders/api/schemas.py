"""Request bodies (unknown fields answer 422), and the documents the commands answer (for OpenAPI)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    model_validator,
)

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
    """A new catalog product (admin or sales)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "sku": "RTR-5G-01", "name": "5G industrial router", "category": "networking",
        "list_price_minor": 129900, "min_price_minor": 99900, "currency": "CNY"}]})

    sku: Annotated[Code, Field(description="The product's stock-keeping unit, unique in the catalog "
                                           "(a second product with it answers 409).")]
    name: Annotated[Text, Field(description="The product's name as partners see it.")]
    category: Annotated[Text, Field(description="Product category; a partner may only order "
                                                "categories it is authorised for.")]
    list_price_minor: Annotated[Price, Field(description="List price per unit, integer minor units "
                                                         "(fen for CNY), > 0.")]
    min_price_minor: Annotated[StrictInt, Field(
        ge=0, le=MAX_MONEY_MINOR, description="Floor per unit in minor units, at most the list price: "
        "an order whose tier price falls below it is refused (422 below-minimum-price).")] | None = None
    currency: Annotated[Currency, Field(description="ISO 4217 code of the prices.")] = DEFAULT_CURRENCY

    @model_validator(mode="after")
    def _minimum_within_list_price(self) -> ProductIn:
        if self.min_price_minor is not None and self.min_price_minor > self.list_price_minor:
            raise ValueError("min_price_minor must not exceed list_price_minor")
        return self


class OverrideIn(RequestModel):
    sku: Annotated[Code, Field(description="A catalog sku (an unknown one answers 422).")]
    unit_price_minor: Annotated[Price, Field(description="The tier's fixed unit price for the sku, "
                                                         "minor units; replaces the discount for it.")]


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), Clean]


class PriceListIn(RequestModel):
    """A new version of a tier's price list (admin or sales)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "effective_from": "2026-12-01", "discount_bp": 1200,
        "overrides": [{"sku": "RTR-5G-01", "unit_price_minor": 109900}]}]})

    effective_from: Annotated[StrictDate, Field(description="First day (YYYY-MM-DD) the version is in "
                                                            "force; may lie in the future.")]
    discount_bp: Annotated[StrictInt, Field(ge=0, le=10_000, description=(
        "Discount off list price in basis points (100 bp = 1 %); the unit price is list price minus "
        "round-half-up(list price x discount_bp / 10000)."))]
    overrides: Annotated[list[OverrideIn], Field(max_length=1000, description=(
        "Fixed per-sku prices that replace the discount for those skus."))] = []
    override_reason: Reason | None = Field(
        None, description="Why the version may take effect sooner than the notice period "
        "(O2C_ORDERS_PRICE_NOTICE_DAYS); required then, else 422 short-notice.")


PartnerId = Annotated[str, StringConstraints(min_length=1, max_length=100), Clean]


class LineIn(RequestModel):
    sku: Annotated[Code, Field(description="A catalog sku; each sku once per order.")]
    qty: Annotated[StrictInt, Field(gt=0, le=MAX_QTY, description="Units ordered, > 0.")]


def _one_line_each(lines: list[LineIn] | list[OverrideIn]) -> None:
    skus = [line.sku for line in lines]
    if len(set(skus)) != len(skus):
        raise ValueError("each sku may appear on one line only")


class ShipToIn(RequestModel):
    region: Annotated[Text, Field(description=(
        "Where the goods go, e.g. east/shanghai; must lie in one of the partner's territories (a "
        "territory covers its sub-regions written with /), else 422 territory-violation."))]
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), Clean, Field(
        description="Delivery address, free text.")] | None = None


class OrderIn(RequestModel):
    """An order (a partner for itself; admin or sales on a partner's behalf, naming partner_id)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "partner_ref": "PO-2026-0412", "lines": [{"sku": "RTR-5G-01", "qty": 10},
                                                {"sku": "SW-24P-02", "qty": 4}],
        "ship_to": {"region": "east/shanghai", "address": "88 Century Ave, Pudong, Shanghai"}}]})

    partner_ref: Annotated[Text, Field(description="The partner's own reference (its purchase order no.).")]
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=200, description=(
        "What is ordered; prices are fixed at placement from the tier's price list in force today."))]
    ship_to: Annotated[ShipToIn, Field(description="Where the order is delivered.")]
    partner_id: Annotated[PartnerId, Field(
        description="The ordering partner: required from staff keys; a partner key may omit it "
        "(naming another partner answers 404).")] | None = None
    deal_id: Annotated[str, StringConstraints(min_length=1, max_length=100), Clean] | None = Field(
        None, description="An approved deal registration of the partner that prices the order.")

    @model_validator(mode="after")
    def _one_line_per_sku(self) -> OrderIn:
        _one_line_each(self.lines)
        return self


class CancelIn(RequestModel):
    """Why the order is cancelled (a partner for its own orders, or admin/sales)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "customer project postponed"}]})

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), Clean,
                      Field(description="Why the order is cancelled; shown as cancel_reason.")]


class DealIn(RequestModel):
    """An end-customer deal to register (a partner for itself; admin or sales naming partner_id)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "end_customer": "Shanghai Metro Line 18 Co.", "customer_code": "91310000MA1K4ABC12",
        "lines": [{"sku": "RTR-5G-01", "qty": 40}], "expires_on": "2027-03-31"}]})

    end_customer: Annotated[Text, Field(description="The end customer the deal is for; compared "
                                                    "without case or extra blanks.")]
    customer_code: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{18}$")] | None = Field(
        None, description="The end customer's unified social credit code (18 characters), if known.")
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=200, description=(
        "The products and quantities of the deal; each sku once."))]
    expires_on: Annotated[StrictDate, Field(description="Last day the registration is asked to hold.")]
    partner_id: Annotated[PartnerId, Field(
        description="The registering partner: required from staff keys; a partner key may omit it.")
    ] | None = None

    @model_validator(mode="after")
    def _one_line_per_sku(self) -> DealIn:
        _one_line_each(self.lines)
        return self


class DealApprovalIn(RequestModel):
    """The deal price of each product of a pending deal (admin or sales)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "lines": [{"sku": "RTR-5G-01", "unit_price_minor": 104900}]}]})

    lines: Annotated[list[OverrideIn], Field(min_length=1, max_length=200, description=(
        "A deal price for every product of the deal, minor units; never below its minimum price."))]

    @model_validator(mode="after")
    def _one_line_per_sku(self) -> DealApprovalIn:
        _one_line_each(self.lines)
        return self


class RejectIn(RequestModel):
    """Why the deal is rejected (admin or sales)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "served directly by the vendor"}]})

    reason: Annotated[Reason, Field(description="Why it is rejected; shown as reject_reason.")]


class Product(BaseModel):
    """A catalog product."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "sku": "RTR-5G-01", "name": "5G industrial router", "category": "networking",
        "list_price_minor": 129900, "min_price_minor": 99900, "currency": "CNY",
        "created_at": "2026-11-27T09:30:00.000000Z"}]})

    sku: str = Field(description="Stock-keeping unit, unique in the catalog.")
    name: str = Field(description="The product's name.")
    category: str = Field(description="Product category (partners may be limited to some categories).")
    list_price_minor: int = Field(description="List price per unit, integer minor units (fen for CNY).")
    min_price_minor: int | None = Field(description="No order line may be priced below this, minor units; "
                                                    "null: no floor.")
    currency: str = Field(description="ISO 4217 code of the prices.")
    created_at: str = Field(description="When the product was created (UTC, ISO 8601).")


class PriceOverride(BaseModel):
    sku: str = Field(description="The sku the fixed price applies to.")
    unit_price_minor: int = Field(description="The tier's fixed unit price, minor units.")


class PriceListVersion(BaseModel):
    """One published version of a tier's price list."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "tier": "gold", "version": 3, "effective_from": "2026-12-01", "discount_bp": 1200,
        "overrides": [{"sku": "RTR-5G-01", "unit_price_minor": 109900}], "currency": "CNY",
        "published_at": "2026-11-27T09:31:00.000000Z"}]})

    tier: str = Field(description="The partner tier the prices apply to.")
    version: int = Field(description="Version number, 1 for the tier's first; the version in force on a day "
                                     "is the highest whose effective_from has come.")
    effective_from: date = Field(description="First day the version is in force.")
    discount_bp: int = Field(description="Discount off list price, basis points (100 bp = 1 %).")
    overrides: list[PriceOverride] = Field(description="Fixed per-sku prices replacing the discount.")
    currency: str = Field(description="ISO 4217 code of the prices.")
    published_at: str = Field(description="When the version was published (UTC, ISO 8601).")
    override_reason: str | None = Field(None, description="Why it took effect sooner than the notice "
                                                          "period; null when it did not.")
    notices_sent: int | None = Field(None, description="Partners notified of the version (on publishing "
                                                       "only; 0 when it is in force at once).")


class OrderLine(BaseModel):
    sku: str = Field(description="The product ordered.")
    qty: int = Field(description="Units ordered.")
    category: str = Field(description="The product's category at placement.")
    unit_price_minor: int = Field(description="Unit price fixed at placement from the tier's price list, "
                                              "minor units.")
    line_total_minor: int = Field(description="unit_price_minor x qty, minor units.")
    shipped_qty: int = Field(description="Units dispatched so far.")


class ShipTo(BaseModel):
    region: str = Field(description="Destination region, inside one of the partner's territories.")
    address: str | None = Field(description="Delivery address, free text.")


class StatusChange(BaseModel):
    status: str = Field(description="The status the order took.")
    at: str = Field(description="When (UTC, ISO 8601).")
    event: str = Field(description="The event that changed it, e.g. OrderApproved.")


class Order(BaseModel):
    """An order and its timeline."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "ord_01JDX5V6R7", "partner_id": "ptn_01JDX4Q2M3", "partner_ref": "PO-2026-0412",
        "status": "placed",
        "lines": [{"sku": "RTR-5G-01", "qty": 10, "category": "networking", "unit_price_minor": 109900,
                   "line_total_minor": 1099000, "shipped_qty": 0}],
        "total_minor": 1099000, "currency": "CNY",
        "ship_to": {"region": "east/shanghai", "address": "88 Century Ave, Pudong, Shanghai"},
        "payment_kind": "credit", "hold_reason": None, "cancel_reason": None, "reject_reason": None,
        "placed_at": "2026-11-27T10:02:11.000000Z", "updated_at": "2026-11-27T10:02:11.000000Z",
        "history": [{"status": "placed", "at": "2026-11-27T10:02:11.000000Z", "event": "OrderPlaced"}]}]})

    id: str = Field(description="The order id (ord_...).")
    partner_id: str = Field(description="The partner the order is for.")
    partner_ref: str = Field(description="The partner's own reference.")
    status: Literal["placed", "confirmed", "backordered", "awaiting_funds", "credit_hold", "approved",
                    "partially_shipped", "shipped", "delivered", "cancelled", "rejected"] = Field(
        description="placed -> confirmed (stock allocated) or backordered -> funds review: approved, "
        "credit_hold (credit terms) or awaiting_funds (prepaid) -> partially_shipped -> shipped -> "
        "delivered; cancelled (before any dispatch) or rejected (by finance) end it.")
    lines: list[OrderLine] = Field(description="The priced lines.")
    total_minor: int = Field(description="Sum of the line totals, minor units.")
    currency: str = Field(description="ISO 4217 code of every amount of the order.")
    ship_to: ShipTo = Field(description="Where the order goes.")
    payment_kind: Literal["prepaid", "credit"] = Field(
        description="The partner's payment terms at placement: prepaid orders wait for money "
        "(awaiting_funds), credit orders are checked against the limit (credit_hold).")
    price_list_version: int | None = Field(None, description="The tier's price-list version that priced "
                                                             "the order; null: list prices.")
    deal_id: str | None = Field(None, description="The approved deal that priced the order; null: none.")
    hold_reason: str | None = Field(description="Why credit holds it (over_limit, overdue or "
                                                "partner_suspended); set only in credit_hold.")
    cancel_reason: str | None = Field(description="Why it was cancelled; set only when cancelled.")
    reject_reason: str | None = Field(description="Why finance rejected it; set only when rejected.")
    placed_at: str = Field(description="When it was placed (UTC, ISO 8601).")
    updated_at: str = Field(description="When it last changed (UTC, ISO 8601).")
    history: list[StatusChange] = Field(description="Every status change, oldest first.")


class PriceListDocument(BaseModel):
    """Every published version of a tier's price list."""

    tier: str = Field(description="The partner tier.")
    versions: list[PriceListVersion] = Field(description="Every version, oldest first.")


class PriceList(PriceListDocument):
    """A tier's price list: every version, and the one in force today."""

    in_force: PriceListVersion | None = Field(description="The version in force today (the highest whose "
                                                          "effective_from has come); null: list price.")


class ProductPage(BaseModel):
    items: list[Product] = Field(description="This page's products.")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last.")


class PriceListPage(BaseModel):
    items: list[PriceListDocument] = Field(description="This page's tiers.")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last.")


class OrderPage(BaseModel):
    items: list[Order] = Field(description="This page's orders.")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last.")


class DealLine(BaseModel):
    sku: str = Field(description="The product.")
    qty: int = Field(description="Units the deal is registered for.")
    unit_price_minor: int | None = Field(description="The deal price, minor units; null until approved.")


class DealConflictRef(BaseModel):
    deal_id: str = Field(description="The deal that refused this registration.")
    partner_id: str = Field(description="The partner holding that deal.")


class Deal(BaseModel):
    """A deal registration (报备) and its decision."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "deal_01JDX7A1B2", "partner_id": "ptn_01JDX4Q2M3",
        "end_customer": "Shanghai Metro Line 18 Co.", "customer_key": "shanghai metro line 18 co.",
        "customer_code": "91310000MA1K4ABC12",
        "lines": [{"sku": "RTR-5G-01", "qty": 40, "unit_price_minor": 104900}],
        "expires_on": "2027-03-31", "status": "approved", "reject_reason": None, "conflict": None,
        "expired": False}]})

    id: str = Field(description="The deal's id.")
    partner_id: str = Field(description="The partner that registered it.")
    end_customer: str = Field(description="The end customer the deal is for.")
    customer_key: str = Field(description="The end customer's name as compared for conflicts "
                                          "(NFKC, case folded, blanks collapsed).")
    customer_code: str | None = Field(description="The end customer's unified social credit code, if given.")
    lines: list[DealLine] = Field(description="The products, quantities and deal prices.")
    expires_on: str = Field(description="Last day the registration holds.")
    status: Literal["pending", "approved", "rejected", "refused"] = Field(
        description="pending until sales decides, then approved (its prices apply to orders naming it) "
        "or rejected; refused: another partner's deal conflicted (a recorded channel conflict).")
    reject_reason: str | None = Field(description="Why it was rejected; null otherwise.")
    conflict: DealConflictRef | None = Field(
        description="For a refused registration, the deal that refused it (staff only; null for partners).")
    expired: bool | None = Field(None, description="Whether expires_on has passed (on reads only).")


class DealPage(BaseModel):
    items: list[Deal] = Field(description="This page's deals.")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last.")


class PriceNotice(BaseModel):
    """A partner's notice of a future price-list version of its tier."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "pn_01JDX8C3D4", "partner_id": "ptn_01JDX4Q2M3", "tier": "gold", "version": 4,
        "effective_from": "2026-12-15", "status": "pending",
        "notified_at": "2026-11-27T09:31:00.000000Z", "acknowledged_at": None}]})

    id: str = Field(description="The notice's id (pn_...).")
    partner_id: str = Field(description="The partner notified.")
    tier: str = Field(description="The partner's tier the new version is for.")
    version: int = Field(description="The price-list version announced.")
    effective_from: str = Field(description="First day the version is in force.")
    status: Literal["pending", "acknowledged"] = Field(description="pending until the partner acknowledges.")
    notified_at: str = Field(description="When the notice was sent (UTC, ISO 8601).")
    acknowledged_at: str | None = Field(description="When the partner acknowledged (UTC); null until then.")


class PriceNoticePage(BaseModel):
    items: list[PriceNotice] = Field(description="This page's notices.")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last.")
