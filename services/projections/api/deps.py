"""Dependencies of the routes: the service context and the callers each view admits."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from libs.runtime.auth import Principal, require
from libs.runtime.host import Ctx as Ctx

FinanceReader = Annotated[Principal, Depends(require("finance", "auditor"))]
SalesReader = Annotated[Principal, Depends(require("finance", "sales", "auditor"))]
Auditor = Annotated[Principal, Depends(require("auditor", "admin"))]
