"""Dependencies of the routes: the service context and who may call."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from libs.runtime.auth import STAFF, Principal, require
from libs.runtime.host import Ctx as Ctx
from libs.runtime.params import Limit as Limit

Finance = Annotated[Principal, Depends(require("finance"))]
"""Publishes programs, closes periods and approves settlements."""
MoneyReader = Annotated[Principal, Depends(require("finance", "auditor", "partner"))]
"""Reads accruals and settlements (a partner key: its own only)."""
ProgramReader = Annotated[Principal, Depends(require(*STAFF, "partner"))]
"""Reads programs (a partner key: those it is eligible for only)."""
