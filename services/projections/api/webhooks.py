"""Webhooks: a partner (or an admin for a partner) registers endpoints and reads what was pushed.

Every call is partner-scoped: a partner key sees its own webhooks only, and
another partner's webhook or delivery answers 404, like one that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from libs.runtime.auth import Principal, require
from libs.runtime.documents import get
from libs.runtime.errors import DomainError, NotFound
from libs.runtime.idempotency import Command, IdempotentCommand
from libs.runtime.params import Cursor, Limit, PathId, QueryText
from services.projections.api.deps import Ctx
from services.projections.api.schemas import (
    Webhook,
    WebhookDeliveries,
    WebhookDelivery,
    WebhookIn,
    Webhooks,
)
from services.projections.application import webhooks
from services.projections.application.documents import PARTNER
from services.projections.domain.webhooks import url_problem
from services.projections.settings import ProjectionsSettings

WebhookOwner = Annotated[Principal, Depends(require("partner", "admin"))]


def webhook_routes(settings: ProjectionsSettings) -> APIRouter:
    """The webhook routes; ``settings`` says whether plain http to loopback hosts is accepted."""
    router = APIRouter(tags=["webhooks"])

    @router.post("/v1/webhooks", status_code=201, response_model=Webhook)
    async def register_webhook(body: WebhookIn, principal: WebhookOwner,
                               command: IdempotentCommand) -> Response:
        """Register an endpoint for the partner's events (only events from now on are pushed).

        Refusals: 422 validation (the URL: https only; plain http only to a loopback host
        where the service allows it), 422 partner-id-required (admin), 404 (an unknown partner,
        or a partner key naming another partner)."""
        problem = url_problem(body.url, allow_loopback_http=settings.webhook_allow_loopback_http)
        if problem is not None:
            raise DomainError(f"url {problem}", slug="validation", errors=[
                {"field": "url", "message": problem, "type": "url"}])
        partner_id = _registering_partner(principal, body)

        async def run(unit: Any) -> dict[str, Any]:
            if not principal.is_partner and await get(unit.conn, PARTNER, partner_id) is None:
                raise NotFound(f"no partner {partner_id}")
            return await webhooks.register(unit.conn, partner_id=partner_id, url=body.url,
                                           secret=body.secret, events=body.events,
                                           actor=principal.actor)

        return await command.run(run, body)

    @router.get("/v1/webhooks", response_model=Webhooks)
    async def list_webhooks(ctx: Ctx, principal: WebhookOwner, partner_id: QueryText = None,
                            cursor: Cursor = None, limit: Limit = 50) -> dict[str, Any]:
        """The live webhooks: a partner's own; an admin's all, or one partner's (``partner_id``)."""
        async with ctx.db.read() as conn:
            return await webhooks.list_webhooks(conn, principal.scoped(partner_id), cursor, limit)

    @router.delete("/v1/webhooks/{webhook_id}", status_code=204)
    async def delete_webhook(webhook_id: PathId, principal: WebhookOwner, command: Command) -> Response:
        """Stop pushing to the endpoint; its pushes not yet delivered are cancelled."""
        return await command.run(lambda unit: webhooks.delete(unit.conn, webhook_id, principal))

    @router.get("/v1/webhooks/{webhook_id}/deliveries", response_model=WebhookDeliveries)
    async def webhook_deliveries(
        webhook_id: PathId, ctx: Ctx, principal: WebhookOwner, cursor: Cursor = None, limit: Limit = 50,
    ) -> dict[str, Any]:
        """The pushes to the endpoint, newest first, each with its attempts (status, error, time)."""
        async with ctx.db.read() as conn:
            return await webhooks.deliveries(conn, webhook_id, principal, cursor, limit)

    @router.post("/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", status_code=202,
                 response_model=WebhookDelivery)
    async def redeliver_webhook(webhook_id: PathId, delivery_id: PathId, principal: WebhookOwner,
                                command: Command) -> Response:
        """Push the delivery again now: the same body and event id, retried as a new push."""
        return await command.run(
            lambda unit: webhooks.redeliver(unit.conn, webhook_id, delivery_id, principal))

    return router


def _registering_partner(principal: Principal, body: WebhookIn) -> str:
    """A partner key registers for itself (naming another partner answers 404); admin names one."""
    if principal.is_partner:
        if principal.partner_id is None or body.partner_id not in (None, principal.partner_id):
            raise NotFound(f"no partner {body.partner_id}")
        return principal.partner_id
    if body.partner_id is None:
        raise DomainError("admin must give the partner_id the webhook is for",
                          slug="partner-id-required")
    return body.partner_id
