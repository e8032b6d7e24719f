"""Dependencies of the routes: the service context and the caller's role."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from libs.runtime.auth import ALL_ROLES, STAFF, Principal, require
from libs.runtime.host import Ctx as Ctx
from libs.runtime.params import Limit as Limit

WAREHOUSE_ROLES = ("warehouse",)
"""Who books receipts, dispatches, delivers and receives returns (API.md: warehouse only)."""
RETURN_REQUESTERS = ("partner", "admin", "sales", "finance", "warehouse")
"""Who may ask for a return: the partner (its own orders) and staff that may write (not auditors)."""

Warehouse = Annotated[Principal, Depends(require(*WAREHOUSE_ROLES))]
Staff = Annotated[Principal, Depends(require(*STAFF))]
AnyRole = Annotated[Principal, Depends(require(*ALL_ROLES))]
ReturnRequester = Annotated[Principal, Depends(require(*RETURN_REQUESTERS))]

