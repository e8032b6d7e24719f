"""The orders service's composition root (port 8102)."""

from __future__ import annotations

from pathlib import Path

from libs.runtime.host import ServiceSpec
from services.orders.api import catalog_routes, order_routes
from services.orders.application.handlers import handlers

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"

SPEC = ServiceSpec(
    name="orders",
    migrations=MIGRATIONS,
    routers=lambda ctx: [catalog_routes.router, order_routes.router],
    handlers=handlers,
    subscribes_to=("partners", "delivery", "credit"),
)
