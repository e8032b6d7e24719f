"""A distributor's webhook receiver for tests: a real HTTP server on a loopback port.

It checks each push's signature the way docs/webhooks.md tells receivers to, keeps
every push it was sent, and deduplicates on the event id. ``failing`` makes it
answer 500 (an outage that still accepts connections); ``stop`` closes the port so
pushes are refused; ``start`` opens it again on the same port.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def verify_signature(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """The check docs/webhooks.md shows: HMAC-SHA256 of ``"<t>." + body``, and a fresh ``t``."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    timestamp, signature = parts.get("t", ""), parts.get("v1", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


@dataclass
class Receiver:
    secret: str
    failing: bool = False
    port: int = 0
    pushes: list[dict[str, Any]] = field(default_factory=list)
    """Every push that arrived while the receiver answered (including the ones it failed)."""
    unsigned: int = 0
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The pushes it accepted, deduplicated on the event id (the receiver's idempotency)."""
    duplicates: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/o2c"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.receive(self.headers.get("O2C-Signature", ""), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the port: pushes are refused until ``start``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reserve_port(self) -> Receiver:
        """Pick a free port without listening on it yet (pushes are refused until ``start``)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        return self

    def receive(self, signature: str, body: bytes) -> int:
        with self._lock:
            if not verify_signature(self.secret, signature, body):
                self.unsigned += 1
                return 400
            push = json.loads(body)
            self.pushes.append(push)
            if self.failing:
                return 500
            if push["id"] in self.by_id:
                self.duplicates += 1
            else:
                self.by_id[push["id"]] = push
            return 204
