"""The orders service's composition root (port 8102)."""

from __future__ import annotations

from libs.runtime.host import ServiceSpec
from services.orders.api import catalog_routes, order_routes
from services.orders.application.handlers import handlers

SPEC = ServiceSpec(
    name="orders",
    routers=lambda ctx: [catalog_routes.router, order_routes.router],
    handlers=handlers,
    subscribes_to=("partners", "delivery", "credit"),
)
