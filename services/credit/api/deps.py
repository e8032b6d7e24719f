"""Request dependencies: the service context and the role gates of the credit API."""

from __future__ import annotations

from functools import cache
from typing import Annotated

from fastapi import Depends

from libs.runtime.auth import Principal, require
from libs.runtime.host import Ctx as Ctx
from services.credit.settings import CreditSettings


@cache
def credit_settings() -> CreditSettings:
    """The service's settings, read once (``app`` reads them at start, so a bad value fails there)."""
    return CreditSettings()


async def settings() -> CreditSettings:
    """:func:`credit_settings` as a dependency; async, so FastAPI does not hand it to a worker
    thread on every request."""
    return credit_settings()


Settings = Annotated[CreditSettings, Depends(settings)]

Finance = Annotated[Principal, Depends(require("finance"))]
"""Finance decides holds, terms, payments and write-offs (API.md gives these to finance only)."""

Reader = Annotated[Principal, Depends(require("finance", "auditor", "partner"))]
"""Finance and auditors read every account; a partner key reads its own only."""

PartnerKey = Annotated[Principal, Depends(require("partner"))]
"""Only the partner itself confirms or disputes its statement."""
