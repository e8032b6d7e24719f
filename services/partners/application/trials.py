"""Trials end by themselves: a running trial whose ``ends_on`` is before today ends.

``end_expired_trials`` is the rule applied once for a given day (tests call it
directly); ``end_trials_periodically`` is the background task that applies it
every ``O2C_PARTNERS_TRIAL_CHECK_SECONDS`` with the service's today.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import date

from libs.events.base import EventMetadata
from libs.messaging.timing import every
from libs.runtime import commands, documents
from libs.runtime.host import ServiceContext
from services.partners.application.partners import end_trial_if_due
from services.partners.application.read_models import PARTNER
from services.partners.settings import PartnersSettings

log = logging.getLogger(__name__)

ACTOR = "system:partners-trials"


async def _candidates(ctx: ServiceContext, today: date) -> list[str]:
    """Partners whose running trial (maybe under suspension) ended before ``today``."""
    due: list[str] = []
    async with ctx.db.read() as conn:
        for status in ("trial", "suspended"):
            cursor: str | None = None
            while True:
                page = await documents.page(
                    conn, PARTNER, status=status, cursor=cursor, limit=documents.MAX_LIMIT,
                    where=lambda body: bool(body.get("trial_ends_on"))
                    and date.fromisoformat(body["trial_ends_on"]) < today)
                due.extend(item["id"] for item in page["items"])
                cursor = page["next_cursor"]
                if cursor is None:
                    break
    return due


async def end_expired_trials(ctx: ServiceContext, today: date) -> list[str]:
    """Append ``TrialEnded`` for every running trial that ended before ``today``; the ids ended."""
    ended: list[str] = []
    meta = EventMetadata(actor=ACTOR)
    for partner_id in await _candidates(ctx, today):
        if await commands.run(ctx, meta, functools.partial(
                end_trial_if_due, partner_id=partner_id, today=today)):
            ended.append(partner_id)
    return ended


async def end_trials_periodically(ctx: ServiceContext, stop: asyncio.Event) -> None:
    """Background task (``ServiceSpec.tasks``): end due trials every few seconds until ``stop``."""

    async def round_() -> None:
        ended = await end_expired_trials(ctx, ctx.today())
        if ended:
            log.info("trials ended: %s", ", ".join(ended))

    await every(stop, PartnersSettings().trial_check_seconds, round_, "ending expired trials")
