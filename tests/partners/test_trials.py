"""Trials end by themselves: the rule for a given day, and the background task that applies it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest

from services.partners.application.trials import end_expired_trials, end_trials_periodically
from tests.conftest import wait_until
from tests.service_support import ADMIN, RunningService

from .support import register, sign


async def status_of(svc: RunningService, partner_id: str) -> str:
    return (await svc.client.get(f"/v1/partners/{partner_id}", headers=ADMIN)).json()["status"]


async def test_due_trials_end_and_promoted_ones_do_not(svc: RunningService) -> None:
    due = (await register(svc, legal_id="L-DUE"))["id"]
    await sign(svc, due, "trial", "2025-01-01", "2025-03-31")
    promoted = (await register(svc, legal_id="L-PROMOTED"))["id"]
    await sign(svc, promoted, "trial", "2025-01-01", "2025-03-31")
    await sign(svc, promoted, "annual", "2025-03-01", "2026-02-28")
    later = (await register(svc, legal_id="L-LATER"))["id"]
    await sign(svc, later, "trial", "2025-01-01", "2025-04-30")
    paused = (await register(svc, legal_id="L-PAUSED"))["id"]
    await sign(svc, paused, "trial", "2025-01-01", "2025-03-15")
    await svc.client.post(f"/v1/partners/{paused}/suspend", json={"reason": "audit"}, headers=ADMIN)

    assert await end_expired_trials(svc.ctx, date(2025, 3, 31)) == [paused]
    assert sorted(await end_expired_trials(svc.ctx, date(2025, 4, 1))) == [due]
    assert await end_expired_trials(svc.ctx, date(2025, 4, 1)) == []  # nothing twice

    assert await status_of(svc, due) == "applied"
    assert await status_of(svc, promoted) == "active"
    assert await status_of(svc, later) == "trial"
    assert await status_of(svc, paused) == "suspended"
    [ended] = [e for e in await svc.ctx.store.load(f"partner-{due}") if e.event_type == "TrialEnded"]
    assert ended.payload()["status_after"] == "applied"
    assert ended.payload()["ended_on"] == "2025-03-31"
    assert ended.actor == "system:partners-trials"
    reinstated = await svc.client.post(f"/v1/partners/{paused}/reinstate", headers=ADMIN)
    assert reinstated.json()["status"] == "applied"
    document = (await svc.client.get(f"/v1/partners/{due}", headers=ADMIN)).json()
    assert document["trial_ends_on"] is None and document["agreements"][0]["state"] == "ended"


async def test_the_background_task_ends_trials_with_the_service_today(
    svc: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("O2C_PARTNERS_TRIAL_CHECK_SECONDS", "0.05")
    pid = (await register(svc))["id"]
    await sign(svc, pid, "trial", "2025-01-01", "2025-03-31")
    svc.ctx.clock = lambda: datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
    stop = asyncio.Event()
    task = asyncio.create_task(end_trials_periodically(svc.ctx, stop))

    async def ended() -> bool:
        return await status_of(svc, pid) == "applied"

    try:
        await wait_until(ended, 10, "the trial to end")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert await status_of(svc, pid) == "applied"
