"""An event loop on a thread of its own, for synchronous code that drives async APIs.

``o2c up`` is a synchronous supervisor; the embedded broker's launcher
(:class:`libs.messaging.broker.EmbeddedBroker`) and the Kafka admin calls are async.
Rather than keep blocking copies of them, the supervisor runs them here. The loop
keeps running between calls, so a child process started on it is reaped (its
``returncode`` set) as soon as it exits, not at the next call.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """A daemon thread running one event loop until :meth:`close`."""

    def __init__(self, name: str = "o2c-loop") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and wait for its result (or its exception)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def close(self) -> None:
        """Stop the loop and its thread (idempotent)."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
