"""``GET /internal/audit/verify``: a service verifies its own event store for the auditors.

Each service mounts ``audit_router()``; the projections service calls every
service's route (forwarding the caller's key) to verify the whole system,
since no service reads another's database. It passes the seal it anchored
last time (``anchor_seq``, ``anchor_position``, ``anchor_hash``), and keeps
the ``seal_head`` answered as the next anchor.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from libs.runtime.auth import Principal, require
from libs.runtime.errors import DomainError
from libs.runtime.openapi_doc import answers
from libs.store.integrity import SealAnchor, verify

AUDIT_ROLES = ("auditor", "admin")
MAX_SEQ = 2**63 - 1

AnchorNumber = Annotated[int | None, Query(ge=1, le=MAX_SEQ)]


class Seal(BaseModel):
    seq: int = Field(description="The seal's sequence number.")
    position: int = Field(description="The store position the seal covers up to.")
    chain_hash: str = Field(description="The seal chain's hash at that seal.")


class Finding(BaseModel):
    """A bad event: by store position in a service's store, by ``received_seq`` in the archive."""

    position: int | None = Field(None, description="Store position of the bad event (a service's store).")
    received_seq: int | None = Field(None, description="Archive sequence of the bad event (the archive).")
    service: str | None = Field(None, description="The service that published it (the archive).")
    stream_id: str | None = Field(None, description="Its stream (the archive).")
    stream_version: int | None = Field(None, description="Its version in the stream (the archive).")
    kind: str = Field(description="What is wrong there (altered, forged, missing, rolled-back, ...).")
    detail: str = Field(description="In words.")


class StoreVerification(BaseModel):
    """One store's verification (fields beyond ``ok`` and ``checked`` appear when they apply)."""

    ok: bool = Field(description="True when no event was altered, forged or removed.")
    checked: int = Field(description="Events checked.")
    sealed: int | None = Field(None, description="Events covered by the relay's seal chain.")
    mode: str | None = Field(None, description="keyed (links signed with the audit keys) or unkeyed.")
    links: dict[str, int] | None = Field(None, description="Chain links per audit key id.")
    warnings: list[str] | None = Field(None, description="What needs saying about the keys.")
    seal_head: Seal | None = Field(None, description="The last seal: the anchor for next time.")
    first_bad: int | None = Field(None, description="The first bad position (the archive: received_seq); "
                                                    "absent or null when ok.")
    problems: list[Finding] | None = Field(None, description="Every bad position, in order.")
    error: str | None = Field(None, description="Why the store could not be verified (unreachable, ...).")
    anchor: Seal | None = Field(None, description="The seal anchored last time, which the store must "
                                                  "still hold (projections' system verification).")


def _anchor(seq: int | None, position: int | None, chain_hash: str | None) -> SealAnchor | None:
    given = (seq, position, chain_hash)
    if all(part is None for part in given):
        return None
    if seq is None or position is None or chain_hash is None:
        raise DomainError("anchor_seq, anchor_position and anchor_hash go together",
                          slug="incomplete-anchor")
    return SealAnchor(seq, position, chain_hash)


def audit_router() -> APIRouter:
    """A router with ``GET /internal/audit/verify`` (auditor, admin) over the service's store.

    Answers ``libs.store.integrity.verify(db, chain, anchor).as_dict()`` under the keys of the
    service's own store: ``{ok, mode, checked, sealed, links, seal_head?, warnings?,
    first_bad?, problems?}``.
    """
    router = APIRouter(tags=["audit"])

    @router.get("/internal/audit/verify", **answers(StoreVerification))
    async def verify_own_store(
        request: Request, _: Annotated[Principal, Depends(require(*AUDIT_ROLES))],
        anchor_seq: AnchorNumber = None,
        anchor_position: AnchorNumber = None,
        anchor_hash: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    ) -> dict[str, Any]:
        """Walk this service's stream chains and the relay's seal; name the first bad position.

        With an anchor (a seal seen earlier, kept elsewhere), also check that the seal
        chain still holds it: a store truncated behind it answers ``rolled-back``.
        """
        ctx = request.app.state.ctx
        anchor = _anchor(anchor_seq, anchor_position, anchor_hash)
        return (await verify(ctx.db, ctx.store.chain, anchor)).as_dict()

    return router
