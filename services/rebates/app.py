"""The rebates composition root: routes, reactions to partners' and credit's events."""

from __future__ import annotations

from pathlib import Path

from libs.runtime.host import ServiceSpec
from services.rebates.api import coop
from services.rebates.api.routes import router
from services.rebates.application.coop import expire_funds_periodically
from services.rebates.application.handlers import handlers

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"

SPEC = ServiceSpec(
    name="rebates",
    routers=lambda ctx: [router, coop.router],
    handlers=handlers,
    subscribes_to=("partners", "credit"),
    migrations=MIGRATIONS,
    tasks=(expire_funds_periodically,),
)
