"""Waiting helpers for long-running loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def every(stop: asyncio.Event, seconds: float, work: Callable[[], Awaitable[object]],
                what: str) -> None:
    """Run ``work`` every ``seconds`` until ``stop``; a failed round is logged and the next retries."""
    while not stop.is_set():
        try:
            await work()
        except Exception:  # keep the loop alive; the next round retries
            log.exception("%s failed", what)
        await sleep_or_stop(stop, seconds)
