"""The composition root of delivery: its routes, its reactions to orders' events, nothing else."""

from __future__ import annotations

from pathlib import Path

from libs.runtime.host import ServiceSpec
from services.delivery.api import returns, shipments, stock
from services.delivery.application.handlers import handlers

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"

SPEC = ServiceSpec(
    name="delivery",
    migrations=MIGRATIONS,
    routers=lambda ctx: [stock.router, shipments.router, returns.router],
    handlers=handlers,
    subscribes_to=("orders",),
)
