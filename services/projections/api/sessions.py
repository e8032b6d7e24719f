"""Dashboard sessions: a key signed in once becomes a signed, expiring cookie; no secret travels again.

The cookie holds ``<key id>.<expires at>.<nonce>.<HMAC-SHA256>``, never the key's
secret. It is checked on every request: the signature, the expiry, and that
the key is still valid in the key ring (a revoked key ends its sessions within
the ring's refresh). The signing key is derived from the service's audit keys,
which every replica shares, so a session works behind any replica and survives
a restart; a service without audit keys signs with a random key of its own
process (sessions then end when it restarts). Signing out clears the cookie;
the token itself stays valid until it expires (``SESSION_SECONDS``), as any
bearer token would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from libs.runtime.auth import KeyRing, Principal

COOKIE = "o2c_session"
SESSION_SECONDS = 8 * 3600
"""A session lasts one working day, whatever is done with it."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Sessions:
    signing_key: bytes

    @classmethod
    def derived_from(cls, audit_secret: str | None) -> Sessions:
        if not audit_secret:
            return cls(secrets.token_bytes(32))
        return cls(hmac.new(audit_secret.encode("utf-8"), b"o2c dashboard sessions",
                            hashlib.sha256).digest())

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self.signing_key, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, principal: Principal, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + SESSION_SECONDS)
        payload = f"{_b64(principal.key_id.encode('utf-8'))}.{expires}.{secrets.token_urlsafe(12)}"
        return f"{payload}.{self._mac(payload)}"

    def principal(self, token: str | None, keyring: KeyRing, now: float | None = None) -> Principal | None:
        """The key a cookie stands for, if it is genuine, unexpired and the key still valid."""
        if not token or len(token) > 400 or not token.isascii() or token.count(".") != 3:
            return None
        payload, _, mac = token.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        key_text, expires, _ = payload.split(".")
        if not expires.isdigit() or int(expires) <= (time.time() if now is None else now):
            return None
        try:
            key_id = _unb64(key_text).decode("utf-8")
        except ValueError:
            return None
        return keyring.by_key_id(key_id)
