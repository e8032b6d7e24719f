"""Dependencies of the routes: the service context and the callers each view admits."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from libs.runtime.auth import Principal, require
from libs.runtime.host import ServiceContext


def context(request: Request) -> ServiceContext:
    return request.app.state.ctx


Ctx = Annotated[ServiceContext, Depends(context)]
FinanceReader = Annotated[Principal, Depends(require("finance", "auditor"))]
SalesReader = Annotated[Principal, Depends(require("finance", "sales", "auditor"))]
Auditor = Annotated[Principal, Depends(require("auditor", "admin"))]
