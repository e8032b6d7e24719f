"""Composition root of the partners service: routes, reactions and the trial clock."""

from __future__ import annotations

from pathlib import Path

from libs.runtime.host import ServiceSpec
from services.partners.api import key_routes, partner_routes
from services.partners.application.handlers import HANDLERS
from services.partners.application.trials import end_trials_periodically

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"

SPEC = ServiceSpec(
    name="partners",
    migrations=MIGRATIONS,
    routers=lambda ctx: [key_routes.router, partner_routes.router],
    handlers=lambda ctx: HANDLERS,
    subscribes_to=("orders",),
    tasks=(end_trials_periodically,),
)
