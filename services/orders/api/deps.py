"""FastAPI dependencies: the service context, the settings and who may call what."""

from __future__ import annotations

from functools import cache
from typing import Annotated

from fastapi import Depends

from libs.runtime.auth import ALL_ROLES, STAFF, Principal, require
from libs.runtime.host import Ctx as Ctx
from libs.runtime.params import Limit as Limit
from services.orders.settings import OrdersSettings

Anyone = Annotated[Principal, Depends(require(*ALL_ROLES))]
Staff = Annotated[Principal, Depends(require(*STAFF))]
Sales = Annotated[Principal, Depends(require("admin", "sales"))]
"""Catalog and price lists are kept by channel operations."""
Orderer = Annotated[Principal, Depends(require("admin", "sales", "partner"))]
"""Placing and cancelling: a partner for itself, or admin/sales on a partner's behalf."""


@cache
def orders_settings() -> OrdersSettings:
    """The service's settings, read once (``app`` reads them at start, so a bad value fails there)."""
    return OrdersSettings()


async def settings() -> OrdersSettings:
    """:func:`orders_settings` as a dependency (async: no worker thread per request)."""
    return orders_settings()


Settings = Annotated[OrdersSettings, Depends(settings)]
Partner = Annotated[Principal, Depends(require("partner"))]
"""A partner acting for itself (acknowledging its price notices)."""
Channel = Annotated[Principal, Depends(require("admin", "sales", "auditor", "partner"))]
"""Reading price notices and deals: channel operations, auditors, and a partner its own."""
