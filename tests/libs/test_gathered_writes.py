"""One socket write per answer (libs.runtime.wire): the same bytes, gathered per loop turn."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn

from libs.runtime.wire import HOLD_AT_MOST, GatheredWrites, GatheringHttpTools


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5)}.get(name, default)


async def test_the_headers_go_out_with_the_body_in_one_write() -> None:
    real = RecordingTransport()
    gathered = GatheredWrites(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    gathered.write(b"HTTP/1.1 201 Created\r\n\r\n")
    assert real.writes == [] and gathered.get_write_buffer_size() == 24
    gathered.write(b'{"id":1}')
    assert real.writes == [b'HTTP/1.1 201 Created\r\n\r\n{"id":1}']
    await asyncio.sleep(0)
    assert len(real.writes) == 1  # nothing written twice
    gathered.write(b"alone")
    assert real.writes[1:] == []
    await asyncio.sleep(0)  # a write with nothing after it goes out at the next turn
    assert real.writes[1:] == [b"alone"]
    assert gathered.get_extra_info("peername") == ("127.0.0.1", 5)


async def test_close_writes_what_is_held_first_and_abort_drops_it() -> None:
    real = RecordingTransport()
    gathered = GatheredWrites(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    gathered.write(b"last answer")
    gathered.close()
    assert real.writes == [b"last answer"] and real.closed
    await asyncio.sleep(0)
    assert real.writes == [b"last answer"]  # nothing written twice

    other = RecordingTransport()
    dropped = GatheredWrites(other, asyncio.get_running_loop())  # type: ignore[arg-type]
    dropped.write(b"never sent")
    dropped.abort()
    await asyncio.sleep(0)
    assert other.writes == [] and other.aborted


async def test_a_large_write_is_never_held() -> None:
    real = RecordingTransport()
    gathered = GatheredWrites(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    gathered.write(b"x" * (HOLD_AT_MOST + 1))
    assert [len(w) for w in real.writes] == [HOLD_AT_MOST + 1]
    gathered.write(b"head")
    gathered.write(b"y" * 100_000)
    assert [len(w) for w in real.writes] == [HOLD_AT_MOST + 1, 100_004]


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    body = (await receive())["body"]
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(3):
            await send({"type": "http.response.body", "body": b"a" * 100_000, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    answer = b"echo:" + body
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})


def _read_answer(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _read_chunked(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"0\r\n\r\n"):
        chunk = sock.recv(65536)
        assert chunk
        data += chunk
    return data


async def test_a_server_with_gathered_writes_answers_as_before() -> None:
    """Keep-alive answers, a streamed answer and ``Connection: close`` through a real server."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # a client connecting before the server runs waits in the backlog
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app, log_level="warning", log_config=None,
                                           access_log=False, lifespan="off", http=GatheringHttpTools))
    serving = asyncio.create_task(server.serve([listener]))

    def client() -> list[bytes]:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            answers = []
            for body in (b"one", b"two"):
                sock.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n" + body)
                answers.append(_read_answer(sock))
            sock.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
            answers.append(_read_chunked(sock))
            sock.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                         b"Content-Length: 5\r\n\r\nthree")
            last = b""
            while chunk := sock.recv(65536):
                last += chunk
            answers.append(last)
            return answers

    try:
        one, two, stream, closing = await asyncio.to_thread(client)
    finally:
        server.should_exit = True
        await serving
    assert one.startswith(b"HTTP/1.1 201 ") and one.endswith(b"\r\n\r\necho:one")
    assert two.endswith(b"\r\n\r\necho:two")
    assert stream.startswith(b"HTTP/1.1 200 ") and stream.count(b"a" * 100_000) == 3
    assert b"connection: close" in closing.lower() and closing.endswith(b"\r\n\r\necho:three")
