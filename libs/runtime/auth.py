"""Bearer keys and roles.

Keys are issued and revoked by the partners service as events; every service
keeps a local copy (``api_keys``) from those events and an in-memory key ring
that checks that copy for changes every second, so a revoked key is refused
everywhere within seconds (see ``KeyRing``).
Only the sha256 of a secret is ever stored. The bootstrap admin secret comes
from ``O2C_ADMIN_TOKEN``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import func, select, update

from libs.events.partners import KeyIssued, KeyRevoked
from libs.messaging.consumer import Delivery, Handler
from libs.messaging.timing import sleep_or_stop
from libs.runtime.errors import Forbidden, Unauthorized
from libs.runtime.inprocess import CALLER
from libs.store.database import Database
from libs.store.schema import api_keys
from libs.store.sql import insert_ignoring_duplicates

log = logging.getLogger(__name__)

PRINCIPAL_SCOPE_KEY = "o2c.principal"
"""Where ``authenticate`` leaves the caller in the ASGI scope (``libs.runtime.http`` logs it)."""

STAFF = ("admin", "sales", "finance", "warehouse", "auditor")
ALL_ROLES = (*STAFF, "partner")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key, its role, and for ``partner`` keys the one partner it acts for."""

    key_id: str
    role: str
    partner_id: str | None = None

    @property
    def is_partner(self) -> bool:
        return self.role == "partner"

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.key_id}"

    def scoped(self, partner_id: str | None) -> str | None:
        """The partner filter this caller may use: a partner key is always held to its own."""
        return self.partner_id if self.is_partner else partner_id

    def sees(self, partner_id: str | None) -> bool:
        """A partner key sees its own partner's data only; staff see everything."""
        return not self.is_partner or partner_id == self.partner_id


ADMIN = Principal(key_id="bootstrap-admin", role="admin")


class KeyRing:
    """The keys a service accepts, held in memory; a request never reads the database for them.

    Off the request path, ``run`` checks the local copy every ``refresh_seconds`` with one
    one-row statement (how many keys, how many revoked) and reloads the ring only when that
    changed. Keys are never deleted and a revocation is never undone, so every issue and
    every revocation changes the pair. A key revoked in the partners service is refused
    there at once (``refresh`` after the revoking transaction) and in every other service
    within ``refresh_seconds`` of its consumer applying the ``KeyRevoked`` event. A full
    reload every ``FULL_RELOAD_CHECKS`` checks is the backstop for any other change.
    """

    FULL_RELOAD_CHECKS = 60

    def __init__(self, db: Database, admin_token: str | None, refresh_seconds: float = 1.0) -> None:
        self._db = db
        self._admin_hash = hash_secret(admin_token) if admin_token else None
        self._refresh_seconds = refresh_seconds
        self._keys: dict[str, Principal] = {}
        self._seen: tuple[int, int] | None = None

    async def refresh(self) -> None:
        """Reload the whole ring now."""
        async with self._db.read() as conn:
            seen = await self._fingerprint(conn)
            rows = (await conn.execute(
                select(api_keys.c.secret_sha256, api_keys.c.key_id, api_keys.c.role,
                       api_keys.c.partner_id).where(api_keys.c.revoked == 0))).all()
        self._keys = {row[0]: Principal(row[1], row[2], row[3]) for row in rows}
        self._seen = seen

    async def refresh_if_changed(self) -> bool:
        """Reload the ring when the local copy changed since the last load; True if it did."""
        async with self._db.read() as conn:
            seen = await self._fingerprint(conn)
        if seen == self._seen:
            return False
        await self.refresh()
        return True

    @staticmethod
    async def _fingerprint(conn: Any) -> tuple[int, int]:
        row = (await conn.execute(select(
            func.count(), func.coalesce(func.sum(api_keys.c.revoked), 0)))).one()
        return int(row[0]), int(row[1])

    async def run(self, stop: asyncio.Event) -> None:
        checks = 0
        while not stop.is_set():
            await sleep_or_stop(stop, self._refresh_seconds)
            checks += 1
            try:
                if checks % self.FULL_RELOAD_CHECKS == 0:
                    await self.refresh()
                else:
                    await self.refresh_if_changed()
            except Exception:  # keep the last good ring; the next check retries
                log.exception("key ring refresh failed")

    def by_key_id(self, key_id: str) -> Principal | None:
        """The key ``key_id`` while it is valid (a dashboard session checks it on every request)."""
        return next((p for p in self._keys.values() if p.key_id == key_id), None)

    def authenticate(self, secret: str) -> Principal | None:
        digest = hash_secret(secret)
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return ADMIN
        return self._keys.get(digest)


async def store_key(conn: Any, event: KeyIssued, issued_at: str) -> None:
    """Record an issued key; a replayed KeyIssued never revives a key revoked since."""
    await insert_ignoring_duplicates(conn, api_keys, {
        "key_id": event.key_id, "role": event.role, "partner_id": event.partner_id,
        "secret_sha256": event.secret_sha256, "name": event.name, "revoked": 0,
        "issued_at": issued_at,
    })


async def revoke_key(conn: Any, key_id: str) -> None:
    await conn.execute(update(api_keys).where(api_keys.c.key_id == key_id).values(revoked=1))


async def _when_key_issued(delivery: Delivery) -> None:
    assert isinstance(delivery.event, KeyIssued)
    await store_key(delivery.conn, delivery.event, delivery.envelope.occurred_at)


async def _when_key_revoked(delivery: Delivery) -> None:
    assert isinstance(delivery.event, KeyRevoked)
    await revoke_key(delivery.conn, delivery.event.key_id)


def key_handlers() -> Mapping[str, Handler]:
    """Handlers that keep a service's local copy of the keys current."""
    return {KeyIssued.TYPE: _when_key_issued, KeyRevoked.TYPE: _when_key_revoked}


def principal_of(request: Request) -> Principal:
    """The caller by its bearer key (an in-process call, ``libs.runtime.inprocess``, names its own).

    Worked out once per request and kept in the scope (``PRINCIPAL_SCOPE_KEY``, which the
    request's log line reads too): a route's role gate and its command both ask for it.
    """
    scope = request.scope
    caller = scope.get(CALLER)
    if isinstance(caller, Principal):
        return caller
    known = scope.get(PRINCIPAL_SCOPE_KEY)
    if known is not None:
        return known
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("send Authorization: Bearer <secret>")
    principal = request.app.state.keyring.authenticate(secret.strip())
    if principal is None:
        raise Unauthorized("the key is unknown or revoked")
    scope[PRINCIPAL_SCOPE_KEY] = principal
    return principal


async def authenticate(request: Request) -> Principal:
    """:func:`principal_of` as a dependency: any valid key."""
    return principal_of(request)


Authenticated = Annotated[Principal, Depends(authenticate)]


def require(*roles: str) -> Callable[..., Any]:
    """A dependency admitting only ``roles`` (403 for any other authenticated key).

    It takes the request and authenticates itself rather than depending on
    ``authenticate``: FastAPI solves every level of a dependency tree on every request
    (parameters, cache keys, scopes), and this gate sits on nearly every route."""

    async def dependency(request: Request) -> Principal:
        principal = principal_of(request)
        if principal.role not in roles:
            raise Forbidden(f"role {principal.role!r} may not do this")
        return principal

    return dependency

