"""Composition root of the projections service (port 8106).

It publishes nothing and consumes every publisher's topic: each event is
archived as published (timelines, audit) and folded into the read models
behind the finance views; a partner's own events are pushed to its webhooks.
Verification asks every service over HTTP (``/internal/audit/verify``, which
the host mounts on every service).
"""

from __future__ import annotations

from pathlib import Path

from libs.runtime.host import ServiceSpec
from services.projections.api import dashboard, reports, routes
from services.projections.api.audit import audit_routes
from services.projections.api.webhooks import webhook_routes
from services.projections.application.handlers import handlers
from services.projections.application.verify import PeerAudit
from services.projections.application.webhook_sender import webhook_sender
from services.projections.settings import ProjectionsSettings

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


def build_spec(peers: PeerAudit | None = None, settings: ProjectionsSettings | None = None) -> ServiceSpec:
    """The service; ``peers`` says how the other services are reached (default: over the network)."""
    peer_audit = peers or PeerAudit()
    configured = settings or ProjectionsSettings()
    return ServiceSpec(
        name="projections",
        routers=lambda ctx: [routes.router, reports.router, audit_routes(peer_audit), dashboard.router,
                             webhook_routes(configured)],
        handlers=lambda ctx: handlers(),
        subscribes_to=("partners", "orders", "credit", "delivery", "rebates"),
        publishes=False,
        migrations=MIGRATIONS,
        tasks=(webhook_sender(configured),),
    )


SPEC = build_spec()
