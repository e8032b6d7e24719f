"""FastAPI dependencies: the service context and who may call what."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from libs.runtime.auth import ALL_ROLES, STAFF, Principal, require
from libs.runtime.host import Ctx as Ctx
from libs.runtime.params import Limit as Limit

Anyone = Annotated[Principal, Depends(require(*ALL_ROLES))]
Staff = Annotated[Principal, Depends(require(*STAFF))]
Sales = Annotated[Principal, Depends(require("admin", "sales"))]
"""Catalog and price lists are kept by channel operations."""
Orderer = Annotated[Principal, Depends(require("admin", "sales", "partner"))]
"""Placing and cancelling: a partner for itself, or admin/sales on a partner's behalf."""
