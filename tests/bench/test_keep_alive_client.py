"""The chain bench's HTTP client (``o2c.bench.load.Client``) against a server that closes idle
connections, as uvicorn does after 5 s: the next request goes out on a new connection instead
of failing on the closed one."""

from __future__ import annotations

import asyncio

from o2c.bench.load import Client


async def test_a_connection_the_server_closed_is_not_reused() -> None:
    accepted = 0

    async def answer_once_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        body = b'{"n": %d}' % accepted
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()  # no "Connection: close": the client learns it from the socket

    server = await asyncio.start_server(answer_once_then_close, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with Client(f"http://127.0.0.1:{port}", {}) as client:
            first = await client.get("/one")
            await asyncio.sleep(0.1)  # the server's close reaches the idle connection
            second = await client.get("/two", {"a": 1})
    finally:
        server.close()
        await server.wait_closed()
    assert (first.status_code, first.json()) == (200, {"n": 1})
    assert (second.status_code, second.json()) == (200, {"n": 2})
    assert accepted == 2
