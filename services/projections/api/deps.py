"""Dependencies of the routes: the service context, the callers each view admits, query dates."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from fastapi import Depends, Request

from libs.runtime.auth import Principal, require
from libs.runtime.errors import DomainError
from libs.runtime.host import ServiceContext


def context(request: Request) -> ServiceContext:
    return request.app.state.ctx


Ctx = Annotated[ServiceContext, Depends(context)]
FinanceReader = Annotated[Principal, Depends(require("finance", "auditor"))]
SalesReader = Annotated[Principal, Depends(require("finance", "sales", "auditor"))]
Auditor = Annotated[Principal, Depends(require("auditor", "admin"))]

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_day(value: str | None, field: str) -> date | None:
    """A ``YYYY-MM-DD`` query parameter (422 when it is anything else)."""
    if value is None or value == "":
        return None
    try:
        if not _DAY.fullmatch(value):  # fromisoformat alone also takes week dates ("2026-W01-1")
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError(f"{field} must be a date YYYY-MM-DD", slug="validation",
                          errors=[{"field": field, "message": "expected YYYY-MM-DD",
                                   "type": "date"}]) from None
