"""``GET /internal/audit/verify``: a service verifies its own event store for the auditors.

Each service mounts ``audit_router()``; the projections service calls every
service's route (forwarding the caller's key) to verify the whole system,
since no service reads another's database.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from libs.runtime.auth import Principal, require
from libs.store.integrity import verify

AUDIT_ROLES = ("auditor", "admin")


def audit_router() -> APIRouter:
    """A router with ``GET /internal/audit/verify`` (auditor, admin) over ``app.state.ctx.db``.

    Answers ``libs.store.integrity.verify(db, chain).as_dict()`` under the keys of the
    service's own store: ``{ok, mode, checked, sealed, links, warnings?, first_bad?, problems?}``.
    """
    router = APIRouter(tags=["audit"])

    @router.get("/internal/audit/verify")
    async def verify_own_store(
        request: Request, _: Annotated[Principal, Depends(require(*AUDIT_ROLES))]
    ) -> dict[str, Any]:
        """Walk this service's stream hash chains and the relay's seal; name the first bad position."""
        ctx = request.app.state.ctx
        return (await verify(ctx.db, ctx.store.chain)).as_dict()

    return router
