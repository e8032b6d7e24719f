"""Sampling a running service with py-spy, and where its time went (top frames, in percent).

``py-spy record --format raw`` writes collapsed stacks (``frame;frame;... count``).
:func:`summary` turns them into the share of samples each function is on the stack
(inclusive) and at the top of the stack (self), the two figures a reader needs to
see where a request's time goes.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SAMPLE_RATE = 200
TOP = 25


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(__import__("sys").executable).with_name("py-spy"))
    if not Path(found).exists():
        raise RuntimeError("profiling needs py-spy (dev extra): pip install py-spy")
    return found


@contextlib.contextmanager
def recording(pid: int, out: Path, *, idle: bool = False) -> Iterator[None]:
    """Sample ``pid`` while the block runs; collapsed stacks go to ``out`` (+ ``.svg``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [_py_spy(), "record", "--pid", str(pid), "--rate", str(SAMPLE_RATE), "--format", "raw",
               "--output", str(out), "--nonblocking"]
    if idle:
        command.append("--idle")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _frame_name(frame: str) -> str:
    """``handle (libs/messaging/consumer.py:224)`` -> ``handle (libs/messaging/consumer.py)``."""
    if frame.endswith(")") and ":" in frame:
        head, _, _line = frame.rpartition(":")
        return head + ")"
    return frame


WAITING = ("EpollSelector.select (selectors.py)", "KqueueSelector.select (selectors.py)")
"""The event loop waiting for I/O (on a loaded machine a woken thread waiting for a core is
sampled as running, so these are reported apart, not as work)."""


def _stacks(raw: Path) -> Iterator[tuple[list[str], int]]:
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = [_frame_name(f) for f in stack.split(";") if f]
        if frames and count_text.isdigit():
            yield frames, int(count_text)


def summary(raw: Path, top: int = TOP) -> dict[str, Any]:
    """Where the event loop's work goes, from a raw py-spy file.

    ``threads``: shares of all samples (event loop working, event loop waiting in
    ``select``, other threads such as database driver threads). ``self_pct`` and
    ``inclusive_pct``: shares of the event loop's *working* samples, at the top of
    the stack and anywhere on it (frames present in every working sample, the loop's
    own plumbing, are left out of ``inclusive_pct``).
    """
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    others: Counter[str] = Counter()
    total = busy = waiting = 0
    for frames, count in _stacks(raw):
        total += count
        if frames[0].startswith("Thread._bootstrap"):
            others[frames[-1]] += count
        elif frames[-1] in WAITING:
            waiting += count
        else:
            busy += count
            own[frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count

    def pct(n: int, of: int) -> float:
        return round(100 * n / of, 1) if of else 0.0

    def share(counter: Counter[str], of: int, skip_everywhere: bool = False) -> list[list[Any]]:
        ranked = [(name, n) for name, n in counter.most_common() if not (skip_everywhere and n >= busy)]
        return [[name, pct(n, of)] for name, n in ranked[:top]]

    return {
        "samples": total,
        "threads": {"event_loop_working_pct": pct(busy, total), "event_loop_waiting_pct": pct(waiting, total),
                    "other_threads_pct": pct(total - busy - waiting, total),
                    "other_threads_top": share(others, total)[:5]},
        "self_pct": share(own, busy),
        "inclusive_pct": share(inclusive, busy, skip_everywhere=True),
    }
