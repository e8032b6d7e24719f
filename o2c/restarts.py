"""When ``o2c up`` restarts a child that died: at once, then with exponential back-off.

A child that dies after running for a while (killed, a one-off crash) is restarted
at once. A child that dies again soon after its restart is crash-looping: each
further restart waits twice as long as the previous one (``base_s``, ``2 * base_s``,
... capped at ``cap_s``). The supervisor never gives up and never stops the other
children: a crash-looping service is reported (its state, exit code and the wait
before the next attempt) and keeps being retried, so it comes back by itself once
its cause is gone (a database back online, a full disk freed). A child that stays
up for ``stable_s`` is healthy again and its count of crashes starts over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

State = Literal["running", "backoff", "stopped"]


@dataclass(frozen=True)
class RestartPolicy:
    """The back-off of a crash-looping child (seconds)."""

    base_s: float = 1.0
    cap_s: float = 30.0
    stable_s: float = 30.0

    def delay(self, crashes_in_a_row: int) -> float:
        """The wait before restarting a child that crashed ``crashes_in_a_row`` times.

        The first crash is restarted at once; each further one doubles the wait, up to ``cap_s``.
        """
        if crashes_in_a_row <= 1:
            return 0.0
        return min(self.cap_s, self.base_s * 2 ** (crashes_in_a_row - 2))


@dataclass
class _Child:
    started_at: float
    crashes_in_a_row: int = 0
    restarts: int = 0
    last_exit_code: int | None = None
    restart_at: float | None = None  # set while the child is dead and waits for its restart


@dataclass
class Restarts:
    """The restart history of every supervised child (services by name, and ``"broker"``)."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    clock: Callable[[], float] = time.monotonic
    _children: dict[str, _Child] = field(default_factory=dict)

    def started(self, name: str) -> None:
        """``name`` was (re)started just now."""
        child = self._children.get(name)
        if child is None:
            self._children[name] = _Child(started_at=self.clock())
            return
        child.started_at = self.clock()
        child.restart_at = None

    def exited(self, name: str, code: int | None) -> float:
        """``name`` died with ``code`` (``None``: it did not even start); the wait before its restart."""
        now = self.clock()
        child = self._children.setdefault(name, _Child(started_at=now))
        lived = now - child.started_at
        child.crashes_in_a_row = 1 if lived >= self.policy.stable_s else child.crashes_in_a_row + 1
        child.last_exit_code = code
        delay = self.policy.delay(child.crashes_in_a_row)
        child.restart_at = now + delay
        child.restarts += 1
        return delay

    def waiting(self, name: str) -> bool:
        """True while ``name`` is dead and waits for a restart."""
        child = self._children.get(name)
        return child is not None and child.restart_at is not None

    def due(self, name: str) -> bool:
        """True when ``name`` waits for a restart and its wait is over."""
        child = self._children.get(name)
        return child is not None and child.restart_at is not None and child.restart_at <= self.clock()

    def forget(self, name: str) -> None:
        """``name`` was stopped on purpose: no restart is pending and its history starts over."""
        self._children.pop(name, None)

    def status(self, name: str, running: bool) -> dict[str, Any]:
        """``{state, restarts, crashes_in_a_row, last_exit_code, restart_in_s}`` of ``name``.

        ``state`` is ``running``, ``backoff`` (dead, restart pending) or ``stopped``.
        ``crashes_in_a_row`` falls back to 0 once a running child has been up ``stable_s``.
        """
        child = self._children.get(name)
        if child is None:
            return {"state": "running" if running else "stopped", "restarts": 0,
                    "crashes_in_a_row": 0, "last_exit_code": None, "restart_in_s": None}
        now = self.clock()
        stable = running and now - child.started_at >= self.policy.stable_s
        state: State = "running" if running else "backoff" if child.restart_at is not None else "stopped"
        restart_in = None if child.restart_at is None else round(max(0.0, child.restart_at - now), 3)
        return {"state": state, "restarts": child.restarts,
                "crashes_in_a_row": 0 if stable else child.crashes_in_a_row,
                "last_exit_code": child.last_exit_code, "restart_in_s": restart_in}
