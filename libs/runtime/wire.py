"""One socket write per answer: uvicorn's HTTP protocol with its writes gathered per loop turn.

uvicorn writes an answer's status line and headers when the app sends
``http.response.start``, and its body when the app sends ``http.response.body``: two
``send()`` calls for every answer, one after the other in the same turn of the event
loop. On loopback each ``send()`` also runs the receiving side's TCP work in the
sender's process, so under ``o2c bench api`` the two made up about 8 % of the orders
process's samples (``docs/benchmarks.md``). ``GatheredWrites`` keeps what is written in
one turn and hands it to the socket as one write at the start of the next turn (what a
client reads is unchanged: the same bytes, in the same order).

Nothing is held back for long: a turn's writes go out at the next turn, before any
timer or I/O callback runs; past ``FLUSH_AT`` bytes they go out at once (so a large
streamed answer still meets the transport's flow control); ``close`` writes what is
held first; ``abort`` drops it, as the transport drops its own buffer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FLUSH_AT = 64 * 1024
"""Bytes held in one turn past which they are written at once."""


class GatheredWrites:
    """A transport whose ``write``s in one loop turn reach the socket as one (module doc)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._size = 0
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self._held.append(bytes(data))
        self._size += len(data)
        if self._size >= FLUSH_AT:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush_scheduled)

    def _flush_scheduled(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        """Hand everything held to the transport now."""
        if not self._held:
            return
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held.clear()
        self._size = 0
        self._transport.write(data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held.clear()
        self._size = 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._size

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's own
        return getattr(self._transport, name)


class GatheringHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through ``GatheredWrites`` (``libs.runtime.host.serve``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        gathered: Any = GatheredWrites(transport, self.loop)
        super().connection_made(gathered)
