"""Catalog and tier price lists: kept by admin/sales, read by staff and partners."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Response

from libs.runtime.errors import NotFound
from libs.runtime.idempotency import Command, IdempotentCommand
from libs.runtime.openapi_doc import answers
from libs.runtime.params import Cursor, PathId, QueryText
from services.orders.api.deps import Anyone, Ctx, Limit, Sales, Settings
from services.orders.api.schemas import (
    CODE_PATTERN,
    PriceList,
    PriceListIn,
    PriceListPage,
    PriceListVersion,
    Product,
    ProductIn,
    ProductPage,
)
from services.orders.application import catalog, notices
from services.orders.application.orders import find_partner
from services.orders.domain.catalog import CreateProduct, PublishPriceList

router = APIRouter(tags=["catalog"])
TierPath = Path(pattern=CODE_PATTERN)


@router.post("/v1/products", status_code=201, response_model=Product)
async def create_product(body: ProductIn, _: Sales, command: IdempotentCommand) -> Response:
    """Add a product to the catalog; a sku is unique (409). No line may be priced below its minimum."""
    product = CreateProduct(**body.model_dump())
    return await command.run(lambda unit: catalog.create_product(unit, product), body)


@router.get("/v1/products", **answers(ProductPage))
async def list_products(ctx: Ctx, _: Anyone, category: QueryText = None, limit: Limit = 50,
                        cursor: Cursor = None) -> dict[str, Any]:
    """The catalog, optionally one category; every role may read it."""
    return await catalog.list_products(ctx, category=category, cursor=cursor, limit=limit)


@router.get("/v1/products/{sku}", **answers(Product))
async def get_product(sku: PathId, ctx: Ctx, _: Anyone) -> dict[str, Any]:
    """One product: list price, minimum price and currency; 404 for an unknown sku."""
    return await catalog.get_product(ctx, sku)


@router.put("/v1/price-lists/{tier}", response_model=PriceListVersion)
async def publish_price_list(body: PriceListIn, _: Sales, command: Command, settings: Settings,
                             tier: str = TierPath) -> Response:
    """Publish a new version of the tier's prices; answers it with its version number and
    ``notices_sent``. It must take effect at least ``O2C_ORDERS_PRICE_NOTICE_DAYS`` (7) days
    later unless ``override_reason`` is given (422 short-notice); a version taking effect after
    today notifies every partner of the tier (``GET /v1/price-notices``)."""
    publication = PublishPriceList(tier=tier, effective_from=body.effective_from,
                                   discount_bp=body.discount_bp,
                                   overrides=[(o.sku, o.unit_price_minor) for o in body.overrides],
                                   override_reason=body.override_reason)
    return await command.run(lambda unit: notices.publish_price_list(
        unit, publication, settings.price_notice_days), body)


@router.get("/v1/price-lists", **answers(PriceListPage))
async def list_price_lists(ctx: Ctx, principal: Anyone, limit: Limit = 50,
                           cursor: Cursor = None) -> dict[str, Any]:
    """Staff see every tier's price list; a partner sees its own tier's only."""
    if principal.is_partner:
        tier = await _partner_tier(ctx, principal.partner_id)
        try:
            return {"items": [await catalog.get_price_list(ctx, tier)] if tier else [],
                    "next_cursor": None}
        except NotFound:
            return {"items": [], "next_cursor": None}
    return await catalog.list_price_lists(ctx, cursor=cursor, limit=limit)


@router.get("/v1/price-lists/{tier}", **answers(PriceList))
async def get_price_list(ctx: Ctx, principal: Anyone, tier: str = TierPath) -> dict[str, Any]:
    """Every version of the tier and the one in force today; a partner reads its own tier only."""
    if principal.is_partner and await _partner_tier(ctx, principal.partner_id) != tier:
        raise NotFound(f"no price list for tier {tier!r}", slug="price-list-not-found")
    return await catalog.get_price_list(ctx, tier)


async def _partner_tier(ctx: Ctx, partner_id: str | None) -> str | None:
    if partner_id is None:
        return None
    async with ctx.db.read() as conn:
        partner = await find_partner(conn, partner_id)
    return partner.tier if partner else None
