"""A GET answered by the service's own ASGI app, in-process: no socket, no second server.

The export layer (``libs.runtime.exports``) pages through a list this way, and the
dashboard reads the reports through their public routes, so each sees exactly what
an API client would. ``CALLER`` is the ASGI scope key under which an in-process
call names who is asking (``libs.runtime.auth.authenticate`` honours it): a client
over the network cannot set scope keys, only headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope

CALLER = "o2c.caller"
"""Scope key: the ``Principal`` an in-process call acts for (never settable from outside)."""


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str:
        wanted = name.lower().encode("latin-1")
        return next((v.decode("latin-1") for k, v in self.headers if k.lower() == wanted), "")

    @property
    def is_json(self) -> bool:
        kind = self.header("content-type").split(";", 1)[0].strip()
        return kind == "application/json"

    def json(self) -> Any:
        return orjson.loads(self.body)


_KEPT = ("app", "asgi", "http_version", "scheme", "server", "client", "root_path", "headers", "state",
         "path", "raw_path", "query_string", CALLER)
"""What a child request inherits: the connection and caller, not what routing added to the parent."""


def _empty_request() -> Receive:
    """The ``receive`` of a GET: an empty body, then a client that stays until the answer ends."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # cancelled by the app when its answer is done
        raise AssertionError("unreachable")

    return receive


def child_scope(scope: Scope, *, path: str | None = None,
                query: list[tuple[str, str]] | None = None, **extra: Any) -> Scope:
    """A GET like ``scope`` (same headers, client, app), at ``path`` with ``query``."""
    child = {key: scope[key] for key in _KEPT if key in scope}
    child.update(type="http", method="GET", **extra)
    if path is not None:
        child["path"] = path
        child["raw_path"] = path.encode("utf-8")
    if query is not None:
        child["query_string"] = urlencode(query).encode("latin-1")
    return child


async def get(app: ASGIApp, scope: Scope) -> Answer:
    """Run ``app`` on the GET ``scope`` and collect its whole answer (one page: bounded)."""
    answer = Answer(status=500)
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, _empty_request(), send)
    answer.body = b"".join(chunks)
    return answer


async def stream(app: ASGIApp, scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], AsyncIterator[bytes]]:
    """Run ``app`` on the GET ``scope``; (status, headers, the body as it comes), for a
    ``StreamingResponse``. A small queue holds the app back while the reader is slower."""
    queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=4)
    receive = _empty_request()

    async def run() -> None:
        await app(scope, receive, queue.put)
        await queue.put({"type": "http.response.body", "body": b"", "more_body": False})

    task = asyncio.create_task(run())
    start = await _next(queue, task)
    if start["type"] != "http.response.start":
        raise RuntimeError("the app answered without a status")

    async def body() -> AsyncIterator[bytes]:
        try:
            while True:
                message = await _next(queue, task)
                if message["type"] == "http.response.body":
                    if chunk := message.get("body", b""):
                        yield chunk
                    if not message.get("more_body", False):
                        return
        finally:
            if not task.done():
                task.cancel()

    return start["status"], list(start.get("headers", [])), body()


async def _next(queue: asyncio.Queue[Message], task: asyncio.Task[None]) -> Message:
    """The app's next message; its exception if it failed before sending one."""
    if not queue.empty():
        return queue.get_nowait()
    getter = asyncio.ensure_future(queue.get())
    done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
    if getter in done:
        return getter.result()
    getter.cancel()
    task.result()  # raises what the app raised
    if not queue.empty():
        return queue.get_nowait()
    raise RuntimeError("the app ended without answering")
