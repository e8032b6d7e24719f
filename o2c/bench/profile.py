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


def summary(raw: Path, top: int = TOP) -> dict[str, Any]:
    """Top functions by inclusive and by self share of all samples, from a raw py-spy file."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(top)]

    return {"samples": total, "inclusive_pct": share(inclusive) if total else [],
            "self_pct": share(own) if total else []}
