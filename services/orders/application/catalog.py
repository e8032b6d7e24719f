"""Catalog commands and reads: products (stream ``product-<sku>``) and tier price lists
(stream ``price-list-<tier>``, one event per version), each with its document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import DomainEvent
from libs.events.orders import ProductCreated
from libs.runtime import documents
from libs.runtime.commands import Aggregate, Loaded, Unit
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


async def _write_product(unit: Unit, loaded: Loaded[str, ProductCreated | None],
                         events: Sequence[DomainEvent], before: None) -> dict[str, Any]:
    assert loaded.state is not None
    body = {**loaded.state.payload(), "created_at": loaded.stored[0].occurred_at}
    await documents.put(unit.conn, PRODUCT, loaded.key, body, version=1,
                        ref_id=loaded.state.category)
    return body


PRODUCT_STREAM: Aggregate[str, ProductCreated | None] = Aggregate(
    stream_type="product", stream_id=product_stream, initial=lambda sku: None,
    evolve=lambda state, event: event if isinstance(event, ProductCreated) else state,
    project=_write_product)
"""A product is its creation (later changes would be further events on the stream)."""


async def create_product(unit: Unit, command: CreateProduct) -> dict[str, Any]:
    """A new sku (unique: a second one answers 409) — answers the product document."""
    events = decide_create_product(await find_product(unit.conn, command.sku), command)
    try:
        created = await unit.save(Loaded(PRODUCT_STREAM, command.sku, None, 0), events)
    except ConcurrencyError:
        raise SkuExists(f"sku {command.sku!r} is already in the catalog") from None
    assert created.document is not None
    return created.document


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


async def read_price_list(conn: AsyncConnection, tier: str) -> PriceList:
    """The tier's versions from its document (written with each PriceListPublished), so a
    placement reads one row instead of folding every version the tier ever had."""
    return price_list_of(tier, await documents.get(conn, PRICE_LIST, tier))


def price_list_of(tier: str, body: Mapping[str, Any] | None) -> PriceList:
    """The tier's price list from its document (``None``: the tier has none yet)."""
    return PriceList(tier, tuple(
        PriceListVersion(version=v["version"], effective_from=date.fromisoformat(v["effective_from"]),
                         discount_bp=v["discount_bp"],
                         overrides={o["sku"]: o["unit_price_minor"] for o in v["overrides"]},
                         currency=v["currency"], override_reason=v.get("override_reason"))
        for v in (body or {}).get("versions", [])))


def version_view(tier: str, version: PriceListVersion) -> dict[str, Any]:
    return {"tier": tier, "version": version.version,
            "effective_from": version.effective_from.isoformat(),
            "discount_bp": version.discount_bp,
            "overrides": [{"sku": sku, "unit_price_minor": price}
                          for sku, price in version.overrides.items()],
            "currency": version.currency, "override_reason": version.override_reason}


async def _write_price_list(unit: Unit, loaded: Loaded[str, PriceList], events: Sequence[DomainEvent],
                            before: PriceList) -> dict[str, Any]:
    """The tier's document gains the new version; answers that version as published."""
    tier = loaded.key
    view = {**version_view(tier, loaded.state.versions[-1]), "published_at": loaded.stored[-1].occurred_at}
    previous = await documents.get(unit.conn, PRICE_LIST, tier)
    versions = [*(previous or {}).get("versions", []), view]
    await documents.put(unit.conn, PRICE_LIST, tier, {"tier": tier, "versions": versions},
                        version=loaded.state.versions[-1].version)
    return view


PRICE_LIST_STREAM: Aggregate[str, PriceList] = Aggregate(
    stream_type="price-list", stream_id=price_list_stream, initial=PriceList,
    evolve=evolve_price_list, project=_write_price_list)


async def publish_price_list(unit: Unit, command: PublishPriceList, notice_days: int) -> dict[str, Any]:
    """A new version of a tier's prices (overrides must name catalog skus; at least
    ``notice_days`` ahead unless overridden with a reason); answers that version."""
    loaded = await unit.load(PRICE_LIST_STREAM, command.tier)
    known = {sku for sku, _ in command.overrides
             if await documents.get(unit.conn, PRODUCT, sku) is not None}
    published = await unit.save(loaded, decide_publish_price_list(
        loaded.state, command, known, today=unit.today(), notice_days=notice_days))
    assert published.document is not None
    return published.document


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
