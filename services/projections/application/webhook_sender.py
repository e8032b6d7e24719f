"""The sender: pushes due webhook deliveries, records each attempt, schedules the next one.

A background task of the projections service (``ServiceSpec.tasks``). With several
replicas only the holder of the ``webhook-sender`` lease sends (an advisory lock on
PostgreSQL, a lease row on SQLite: ``libs.messaging.lease``), so a due delivery is
not pushed twice at once; a sender that dies mid-push leaves the row due, and the
next holder pushes it again: at least once, the receiver deduplicates on the id.

Each push is ``POST url`` with the stored body (the same bytes on every attempt)
and ``O2C-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>``. A 2xx
answer delivers it; anything else (another status, a redirect, a refused
connection, the per-request timeout) is a failed attempt, retried after an
exponential backoff with jitter until the retry window since it was queued has
passed, then marked failed (a partner may ask for a redelivery).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import httpx
from sqlalchemy import select, update

from libs.events.base import format_timestamp, utc_now
from libs.messaging.lease import lease_for
from libs.messaging.timing import sleep_or_stop
from libs.runtime.host import ServiceContext, Task
from libs.store.database import Database
from libs.store.sql import insert_ignoring_duplicates
from services.projections.application.webhooks import (
    DELIVERED,
    FAILED,
    PENDING,
    now_ms,
    webhook_attempts,
    webhook_deliveries,
    webhooks,
)
from services.projections.domain.webhooks import SIGNATURE_HEADER, RetryPolicy, sign
from services.projections.settings import ProjectionsSettings

log = logging.getLogger(__name__)

WAVES = 2
"""A round takes at most ``WAVES`` times ``webhook_concurrency`` pushes, so it lasts at most
``WAVES`` request timeouts; the SQLite lease outlives three such rounds without a renewal."""
USER_AGENT = "o2c-webhooks/1"

_DUE = (webhook_deliveries.c.delivery_id, webhook_deliveries.c.webhook_id,
        webhook_deliveries.c.event_id, webhook_deliveries.c.event_type, webhook_deliveries.c.body,
        webhook_deliveries.c.attempts, webhook_deliveries.c.queued_at_ms, webhooks.c.url,
        webhooks.c.secret)


class WebhookSender:
    """Sends what is due on ``db`` with ``client``; one round per ``send_due``."""

    def __init__(self, db: Database, client: httpx.AsyncClient, settings: ProjectionsSettings,
                 rand: random.Random | None = None) -> None:
        self._db = db
        self._client = client
        self._policy: RetryPolicy = settings.retry_policy()
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)
        self._batch = settings.webhook_concurrency * WAVES
        self._rand = rand or random.Random()

    async def send_due(self) -> int:
        """Push the deliveries due now (at most ``WAVES * webhook_concurrency``), at most
        ``webhook_concurrency`` at once; answers how many were attempted."""
        async with self._db.read() as conn:
            due = (await conn.execute(
                select(*_DUE).join(webhooks, webhooks.c.webhook_id == webhook_deliveries.c.webhook_id)
                .where(webhook_deliveries.c.status == PENDING,
                       webhook_deliveries.c.next_attempt_ms <= now_ms(),
                       webhooks.c.deleted_at.is_(None))
                .order_by(webhook_deliveries.c.next_attempt_ms).limit(self._batch))).all()
        await asyncio.gather(*(self._push(row) for row in due))
        return len(due)

    async def _push(self, due: Any) -> None:
        async with self._slots:
            body = due.body.encode("utf-8")
            stamp = int(time.time())
            headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                       SIGNATURE_HEADER: sign(due.secret, stamp, body),
                       "O2C-Event-Id": str(due.event_id), "O2C-Event-Type": due.event_type,
                       "O2C-Delivery-Id": due.delivery_id}
            attempted_at = format_timestamp(utc_now())
            started = time.monotonic()
            status: int | None = None
            error: str | None = None
            try:
                async with self._client.stream("POST", due.url, content=body, headers=headers) as answer:
                    status = answer.status_code  # the body is never read
                if not 200 <= status < 300:
                    error = f"the receiver answered {status}"
            except (httpx.HTTPError, httpx.InvalidURL) as failure:
                error = f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
            duration_ms = int((time.monotonic() - started) * 1000)
        await self._record(due, attempted_at, status, error, duration_ms)

    async def _record(self, due: Any, attempted_at: str, status: int | None, error: str | None,
                      duration_ms: int) -> None:
        attempt = due.attempts + 1
        now = now_ms()
        outcome: dict[str, Any] = {"attempts": attempt, "last_attempt_at": attempted_at,
                                   "last_status_code": status, "last_error": error and error[:500]}
        if error is None:
            outcome.update(status=DELIVERED, next_attempt_ms=None, delivered_at=attempted_at)
        elif now >= due.queued_at_ms + int(self._policy.window_seconds * 1000):
            outcome.update(status=FAILED, next_attempt_ms=None)
            log.warning("webhook delivery %s failed for good after %d attempts: %s",
                        due.delivery_id, attempt, error)
        else:
            outcome.update(next_attempt_ms=now + int(self._policy.delay(attempt, self._rand) * 1000))
        async with self._db.transaction() as conn:
            await insert_ignoring_duplicates(conn, webhook_attempts, {
                "delivery_id": due.delivery_id, "attempt": attempt, "attempted_at": attempted_at,
                "status_code": status, "error": error and error[:500], "duration_ms": duration_ms})
            await conn.execute(update(webhook_deliveries).where(
                webhook_deliveries.c.delivery_id == due.delivery_id,
                webhook_deliveries.c.status == PENDING).values(**outcome))


def webhook_sender(settings: ProjectionsSettings) -> Task:
    """The background task: while this replica holds the lease, send what is due."""

    async def send_webhooks(ctx: ServiceContext, stop: asyncio.Event) -> None:
        lease = lease_for(ctx.db, "webhook-sender",
                          ttl=max(10.0, 3 * WAVES * settings.webhook_timeout_seconds))
        timeout = httpx.Timeout(settings.webhook_timeout_seconds)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            sender = WebhookSender(ctx.db, client, settings)
            try:
                while not stop.is_set():
                    if not await lease.acquire():  # another replica sends; renewing when we do
                        await sleep_or_stop(stop, settings.webhook_poll_seconds)
                        continue
                    if not await sender.send_due():
                        await sleep_or_stop(stop, settings.webhook_poll_seconds)
            finally:
                await lease.release()

    return send_webhooks
