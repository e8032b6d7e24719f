"""A closed-loop HTTP load generator: ``concurrency`` clients, each sending its next request as
soon as the previous one is answered; latency of every request, throughput of the round."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

Request = tuple[dict[str, Any], dict[str, str]]
"""A JSON body and its headers."""


@dataclass(frozen=True)
class Round:
    requests: int
    ok: int
    errors: dict[int, int]
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "ok": self.ok, "errors": self.errors,
                "rps": round(self.rps, 1), "p50_ms": round(statistics.median(self.latencies_ms), 1)
                if self.latencies_ms else 0.0, "p99_ms": round(self.percentile(0.99), 1),
                "seconds": round(self.seconds, 2)}


async def _drive(url: str, path: str, count: int, concurrency: int, expected: int,
                 make: Callable[[int], Request]) -> Round:
    numbers = itertools.count()
    latencies: list[float] = []
    errors: dict[int, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while (n := next(numbers)) < count:
            body, headers = make(n)
            started = time.perf_counter()
            try:
                response = await client.post(path, json=body, headers=headers)
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            if status == expected:
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                errors[status] = errors.get(status, 0) + 1

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60, trust_env=False) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return Round(count, len(latencies), errors, seconds, latencies)


def drive(url: str, path: str, count: int, concurrency: int, make: Callable[[int], Request],
          expected: int = 201) -> Round:
    """Send ``count`` POSTs to ``url + path`` from ``concurrency`` concurrent clients."""
    return asyncio.run(_drive(url, path, count, concurrency, expected, make))
