"""The credit service's composition root."""

from __future__ import annotations

from libs.runtime.host import ServiceSpec
from services.credit.api import accounts, holds, money
from services.credit.application.handlers import handlers

SPEC = ServiceSpec(
    name="credit",
    routers=lambda ctx: [accounts.router, holds.router, money.router],
    handlers=handlers,
    subscribes_to=("partners", "orders", "delivery", "rebates"),
)
