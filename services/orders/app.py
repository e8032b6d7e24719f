"""The orders service's composition root (port 8102)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from libs.runtime.host import ServiceContext, ServiceSpec
from services.orders.api import catalog_routes, deal_routes, deps, notice_routes, order_routes
from services.orders.application.handlers import handlers

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


def _routers(ctx: ServiceContext) -> list[APIRouter]:
    deps.orders_settings()  # typed settings, checked at start
    return [catalog_routes.router, order_routes.router, notice_routes.router, deal_routes.router]


SPEC = ServiceSpec(
    name="orders",
    migrations=MIGRATIONS,
    routers=_routers,
    handlers=handlers,
    subscribes_to=("partners", "delivery", "credit"),
)
