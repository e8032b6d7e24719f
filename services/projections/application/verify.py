"""Verify every store: each publisher's own (over HTTP) and the projections' archive.

Projections cannot read another service's database, so it asks each one's
``GET /internal/audit/verify`` (``libs.runtime.audit``), forwarding the
caller's key. A service that does not answer, or answers anything but a
report, fails the verification with the reason. The archive is checked by
recomputing every archived stream's hash chain (reported as "projections",
``first_bad`` being the archive's ``received_seq``).

Each publisher is also asked whether the seal anchored by the previous
verification is still in its chain (``application.anchors``); the seal head it
answers becomes the next anchor. So verifying regularly is what anchors.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from libs.runtime.host import ServiceContext
from libs.store.integrity import SealAnchor
from services.projections.application import anchors, archive
from services.projections.domain.publishers import PUBLISHERS

VERIFY_PATH = "/internal/audit/verify"


@dataclass(frozen=True)
class PeerAudit:
    """How the other services are reached (``transport``: tests route to in-process apps)."""

    transport: httpx.AsyncBaseTransport | None = None
    timeout_seconds: float = 60.0


def _failed(error: str) -> dict[str, Any]:
    return {"ok": False, "checked": 0, "first_bad": None, "error": error}


async def _ask(client: httpx.AsyncClient, base_url: str, authorization: str | None,
               anchor: SealAnchor | None) -> dict[str, Any]:
    headers = {"Authorization": authorization} if authorization else {}
    params: dict[str, str | int] = {} if anchor is None else {
        "anchor_seq": anchor.seq, "anchor_position": anchor.position,
        "anchor_hash": anchor.chain_hash}
    try:
        response = await client.get(base_url.rstrip("/") + VERIFY_PATH, headers=headers,
                                    params=params)
    except httpx.HTTPError as error:
        return _failed(f"unreachable: {type(error).__name__}: {error}")
    if response.status_code != 200:
        return _failed(f"answered HTTP {response.status_code}: {response.text[:300]}")
    try:
        body = response.json()
        report = {"ok": bool(body["ok"]), "checked": int(body["checked"]),
                  "first_bad": body.get("first_bad")}
    except (ValueError, KeyError, TypeError):
        return _failed("answered something that is not a verification report")
    if anchor is not None:
        report["anchor"] = anchor.as_dict()
    return {**body, **report}


def _mode(services: dict[str, dict[str, Any]]) -> str:
    """``keyed`` or ``unkeyed`` when every answering store says so, else ``mixed``."""
    modes = {report["mode"] for report in services.values() if "mode" in report}
    return modes.pop() if len(modes) == 1 else "mixed"


async def verify_everything(ctx: ServiceContext, peers: PeerAudit,
                            authorization: str | None) -> dict[str, Any]:
    """``{ok, mode, checked, first_bad?, services: {name: {ok, mode, checked, first_bad, ...}}}``.

    The archive is walked under this service's audit keys, the same keys every
    service of the system signs with: a publisher running without them shows up
    here as unkeyed links, even though its own report (unkeyed) passes.
    """
    async with ctx.db.read() as conn:
        known = await anchors.load(conn)
    async with httpx.AsyncClient(transport=peers.transport, timeout=peers.timeout_seconds) as client:
        reports = await asyncio.gather(*(
            _ask(client, ctx.settings.url_of(name), authorization, known.get(name))
            for name in PUBLISHERS))
    services = dict(zip(PUBLISHERS, reports, strict=True))
    heads = {name: head for name, report in services.items()
             if (head := anchors.head_of(report)) is not None}
    async with ctx.db.transaction() as conn:
        await anchors.advance(conn, known, heads)
    async with ctx.db.read() as conn:
        services["projections"] = (await archive.walk_chains(conn, ctx.store.chain)).as_dict()
    result: dict[str, Any] = {
        "ok": all(report["ok"] for report in services.values()),
        "mode": _mode(services),
        "checked": sum(report["checked"] for report in services.values()),
    }
    bad = next((name for name, report in services.items() if not report["ok"]), None)
    if bad is not None:
        result["first_bad"] = {"service": bad, "position": services[bad]["first_bad"]}
    result["services"] = services
    return result
