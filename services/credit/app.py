"""The credit service's composition root."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from libs.runtime.host import ServiceContext, ServiceSpec
from services.credit.api import accounts, deps, holds, money, write_offs
from services.credit.application.handlers import handlers

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


def _routers(ctx: ServiceContext) -> list[APIRouter]:
    deps.credit_settings()  # typed settings, checked at start
    return [accounts.router, holds.router, money.router, write_offs.router]


SPEC = ServiceSpec(
    name="credit",
    routers=_routers,
    handlers=handlers,
    subscribes_to=("partners", "orders", "delivery", "rebates"),
    migrations=MIGRATIONS,
)
