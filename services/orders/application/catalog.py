"""Catalog commands and reads: products (stream ``product-<sku>``) and tier price lists
(stream ``price-list-<tier>``, one event per version), each with its document."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import EventMetadata
from libs.events.orders import PriceListPublished
from libs.runtime import documents
from libs.runtime.aggregate import load, retry_on_conflict
from libs.runtime.errors import NotFound
from libs.runtime.host import ServiceContext
from libs.store.errors import ConcurrencyError
from services.orders.domain.catalog import (
    CreateProduct,
    PriceList,
    PriceListVersion,
    Product,
    PublishPriceList,
    decide_create_product,
    decide_publish_price_list,
    evolve_price_list,
)
from services.orders.domain.errors import SkuExists

PRODUCT = "product"
PRICE_LIST = "price-list"


def product_stream(sku: str) -> str:
    return f"product-{sku}"


def price_list_stream(tier: str) -> str:
    return f"price-list-{tier}"


async def find_product(conn: AsyncConnection, sku: str) -> Product | None:
    body = await documents.get(conn, PRODUCT, sku)
    return _product(body) if body is not None else None


def products_in(found: Mapping[tuple[str, str], dict[str, Any]]) -> dict[str, Product]:
    """The products among documents read by ``documents.get_many``, by sku."""
    return {doc_id: _product(body) for (kind, doc_id), body in found.items() if kind == PRODUCT}


def _product(body: dict[str, Any]) -> Product:
    return Product(sku=body["sku"], name=body["name"], category=body["category"],
                   list_price_minor=body["list_price_minor"],
                   min_price_minor=body["min_price_minor"], currency=body["currency"])


async def create_product(
    ctx: ServiceContext, conn: AsyncConnection, command: CreateProduct, meta: EventMetadata
) -> dict[str, Any]:
    """A new sku (unique: a second one answers 409) — answers the product document."""
    events = decide_create_product(await find_product(conn, command.sku), command)
    try:
        (stored,) = await ctx.store.append(product_stream(command.sku), "product", 0, events, meta,
                                           conn=conn)
    except ConcurrencyError:
        raise SkuExists(f"sku {command.sku!r} is already in the catalog") from None
    event = events[0]
    body = {**event.payload(), "created_at": stored.occurred_at}
    await documents.put(conn, PRODUCT, command.sku, body, version=1, ref_id=command.category)
    return body


async def get_product(ctx: ServiceContext, sku: str) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        body = await documents.get(conn, PRODUCT, sku)
    if body is None:
        raise NotFound(f"no product {sku!r}", slug="product-not-found")
    return body


async def list_products(ctx: ServiceContext, *, category: str | None, cursor: str | None,
                        limit: int) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        return await documents.page(conn, PRODUCT, ref_id=category or None, cursor=cursor,
                                    limit=limit)


async def load_price_list(ctx: ServiceContext, conn: AsyncConnection, tier: str) -> tuple[PriceList, int]:
    return await load(conn, ctx.store, ctx.registry, price_list_stream(tier), PriceList(tier),
                      evolve_price_list)


async def read_price_list(conn: AsyncConnection, tier: str) -> PriceList:
    """The tier's versions from its document (written with each PriceListPublished), so a
    placement reads one row instead of folding every version the tier ever had."""
    body = await documents.get(conn, PRICE_LIST, tier)
    return PriceList(tier, tuple(
        PriceListVersion(version=v["version"], effective_from=date.fromisoformat(v["effective_from"]),
                         discount_bp=v["discount_bp"],
                         overrides={o["sku"]: o["unit_price_minor"] for o in v["overrides"]},
                         currency=v["currency"])
        for v in (body or {}).get("versions", [])))


def version_view(tier: str, version: PriceListVersion) -> dict[str, Any]:
    return {"tier": tier, "version": version.version,
            "effective_from": version.effective_from.isoformat(),
            "discount_bp": version.discount_bp,
            "overrides": [{"sku": sku, "unit_price_minor": price}
                          for sku, price in version.overrides.items()],
            "currency": version.currency}


async def publish_price_list(
    ctx: ServiceContext, command: PublishPriceList, meta: EventMetadata
) -> dict[str, Any]:
    """A new version of a tier's prices (overrides must name catalog skus); answers that version."""

    async def attempt() -> dict[str, Any]:
        async with ctx.db.transaction() as conn:
            state, version = await load_price_list(ctx, conn, command.tier)
            known = {sku for sku, _ in command.overrides
                     if await documents.get(conn, PRODUCT, sku) is not None}
            events = decide_publish_price_list(state, command, known)
            (stored,) = await ctx.store.append(price_list_stream(command.tier), "price-list",
                                               version, events, meta, conn=conn)
            published: PriceListPublished = events[0]
            state = evolve_price_list(state, published)
            view = {**version_view(command.tier, state.versions[-1]),
                    "published_at": stored.occurred_at}
            previous = await documents.get(conn, PRICE_LIST, command.tier)
            versions = [*(previous or {}).get("versions", []), view]
            await documents.put(conn, PRICE_LIST, command.tier,
                                {"tier": command.tier, "versions": versions},
                                version=published.version)
            return view

    return await retry_on_conflict(attempt)


async def get_price_list(ctx: ServiceContext, tier: str) -> dict[str, Any]:
    """Every version of the tier, and the one in force today (``null`` when none has started)."""
    async with ctx.db.read() as conn:
        body = await documents.get(conn, PRICE_LIST, tier)
        state = await read_price_list(conn, tier)
    if body is None:
        raise NotFound(f"no price list for tier {tier!r}", slug="price-list-not-found")
    in_force = state.in_force(ctx.today())
    current = next((v for v in body["versions"] if in_force and v["version"] == in_force.version), None)
    return {**body, "in_force": current}


async def list_price_lists(ctx: ServiceContext, *, cursor: str | None, limit: int) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        return await documents.page(conn, PRICE_LIST, cursor=cursor, limit=limit)
