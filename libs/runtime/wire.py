"""One socket write per answer: uvicorn's HTTP protocol, each write sent with the next one.

uvicorn writes an answer's status line and headers when the app sends
``http.response.start``, and its body when the app sends ``http.response.body``: two
``send()`` calls for every answer, one after the other in the same turn of the event
loop. On loopback each ``send()`` also runs the receiving side's TCP work in the
sender's process and may wake the receiver twice. ``GatheredWrites`` holds a small write
(at most ``HOLD_AT_MOST`` bytes: an answer's headers) until the next one and sends both
as one; a held write with nothing after it goes out at the next turn of the loop (what a
client reads is unchanged: the same bytes, in the same order).

So an answer's headers wait for its body (the same turn) and nothing waits longer than
the current turn. At most one small write is held, so a large answer still meets the
transport's flow control; ``close`` writes what is held first; ``abort`` drops it, as the
transport drops its own buffer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HOLD_AT_MOST = 16 * 1024
"""The largest write held back for the next one (status line and headers are far smaller)."""


class GatheredWrites:
    """A transport that sends a small write together with the next one (module doc)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held = b""
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self._held:  # the held write goes out with this one
            data, self._held = self._held + data, b""
            self._transport.write(data)
            return
        if len(data) > HOLD_AT_MOST:
            self._transport.write(data)
            return
        self._held = bytes(data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush_scheduled)

    def _flush_scheduled(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        """Hand the held write to the transport now."""
        if self._held:
            data, self._held = self._held, b""
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
        self._held = b""
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held)

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's own
        return getattr(self._transport, name)


class GatheringHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through ``GatheredWrites`` (``libs.runtime.host.serve``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        gathered: Any = GatheredWrites(transport, self.loop)
        super().connection_made(gathered)
