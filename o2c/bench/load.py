"""A closed-loop HTTP load generator: ``concurrency`` clients, each sending its next request as
soon as the previous one is answered; latency of every request, throughput of the round.

Each client is one keep-alive HTTP/1.1 connection written and read with asyncio
streams. A general-purpose client (httpx) spent ~5 ms of CPU per request here, more
than the baseline server did, so on 2 cores the generator, not the server, set the
pace; this one spends a few tens of microseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

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


class _Connection:
    """One keep-alive HTTP/1.1 connection (reopened when the server closes it)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> int:
        return (await self.send("POST", path, body, headers))[0]

    async def send(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, bytes]:
        """One request (``body``: JSON, or None for none); the status and the response's body."""
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        payload = orjson.dumps(body) if body is not None else b""
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        kind = "Content-Type: application/json\r\n" if body is not None else ""
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                     f"{kind}Content-Length: {len(payload)}\r\n{head}\r\n".encode() + payload)
        status = int((await reader.readline()).split()[1])
        length, chunked, close = 0, False, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection":
                close = value == b"close"
        if chunked:
            parts = []
            while size := int((await reader.readline()).strip() or b"0", 16):
                parts.append((await reader.readexactly(size + 2))[:-2])
            await reader.readline()
            content = b"".join(parts)
        else:
            content = await reader.readexactly(length)
        if close:
            await self.close()
        return status, content

    def closed_by_server(self) -> bool:
        """The server closed the kept-alive connection (uvicorn does after 5 s idle)."""
        return self.streams is not None and self.streams[0].at_eof()

    async def close(self) -> None:
        if self.streams is not None:
            writer = self.streams[1]
            self.streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


TRANSPORT_ERRORS = (OSError, asyncio.IncompleteReadError, ValueError, IndexError)
"""What a request on a kept-alive connection raises when the connection failed or was closed."""


@dataclass(frozen=True)
class Reply:
    status_code: int
    content: bytes

    def json(self) -> Any:
        return orjson.loads(self.content)


class Client:
    """Keep-alive connections to one service, each carrying one request at a time.

    The chain's clients (placing, warehouse, finance, watcher) send tens of thousands of
    requests; with httpx they spent more CPU per order than some services did, on the same
    two cores. A connection that failed is closed and the error raised
    (``TRANSPORT_ERRORS``): the caller decides whether to send again.
    """

    def __init__(self, url: str, headers: dict[str, str], *, connections: int = 64,
                 timeout: float = 60.0) -> None:
        self.url, self.headers, self.timeout = url, headers, timeout
        self.idle: list[_Connection] = []
        self.gate = asyncio.Semaphore(connections)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        idle, self.idle = self.idle, []
        for connection in idle:
            await connection.close()

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Reply:
        return await self.send("GET", f"{path}?{urlencode(params)}" if params else path, None, {})

    async def post(self, path: str, json: Any, headers: dict[str, str] | None = None) -> Reply:
        return await self.send("POST", path, json, headers or {})

    async def send(self, method: str, path: str, body: Any, headers: dict[str, str]) -> Reply:
        """One request on an idle connection (a new one if none is idle, at most ``connections``);
        a request not answered in ``timeout`` s raises ``TimeoutError`` (an ``OSError``)."""
        async with self.gate:
            connection = await self._connection()
            try:
                async with asyncio.timeout(self.timeout):
                    status, content = await connection.send(method, path, body,
                                                            {**self.headers, **headers})
            except BaseException:
                await connection.close()
                raise
            self.idle.append(connection)
            return Reply(status, content)

    async def _connection(self) -> _Connection:
        """An idle connection the server has not closed meanwhile, else a new one."""
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed_by_server():
                return connection
            await connection.close()
        return _Connection(self.url)


async def _drive(url: str, path: str, count: int, concurrency: int, expected: int,
                 make: Callable[[int], Request]) -> Round:
    numbers = itertools.count()
    latencies: list[float] = []
    errors: dict[int, int] = {}

    async def client_loop(connection: _Connection) -> None:
        try:
            while (n := next(numbers)) < count:
                body, headers = make(n)
                started = time.perf_counter()
                try:
                    status = await connection.post(path, body, headers)
                except TRANSPORT_ERRORS:
                    await connection.close()
                    status = 0
                if status == expected:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors[status] = errors.get(status, 0) + 1
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client_loop(_Connection(url)) for _ in range(concurrency)))
    return Round(count, len(latencies), errors, time.perf_counter() - started, latencies)


def drive(url: str, path: str, count: int, concurrency: int, make: Callable[[int], Request],
          expected: int = 201) -> Round:
    """Send ``count`` POSTs to ``url + path`` from ``concurrency`` concurrent clients."""
    return asyncio.run(_drive(url, path, count, concurrency, expected, make))
