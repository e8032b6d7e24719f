"""The key ring reloads when the local copy of the keys changes, and only then."""

from __future__ import annotations

from libs.events.partners import KeyIssued
from libs.runtime.auth import KeyRing, hash_secret, revoke_key, store_key
from libs.store.database import Database

ISSUED_AT = "2026-01-01T00:00:00.000000Z"


async def _issue(db: Database, key_id: str, secret: str) -> None:
    async with db.transaction() as conn:
        await store_key(conn, KeyIssued(key_id=key_id, role="sales", partner_id=None, name=None,
                                        secret_sha256=hash_secret(secret)), ISSUED_AT)


async def test_issues_and_revocations_are_picked_up_by_the_cheap_check(db: Database) -> None:
    ring = KeyRing(db, admin_token=None)
    await ring.refresh()
    assert not await ring.refresh_if_changed()  # nothing changed: no reload
    await _issue(db, "k1", "one")
    assert ring.authenticate("one") is None  # never read on the request path
    assert await ring.refresh_if_changed()
    assert ring.authenticate("one") is not None
    await _issue(db, "k2", "two")
    async with db.transaction() as conn:
        await revoke_key(conn, "k1")
    assert await ring.refresh_if_changed()
    assert ring.authenticate("one") is None and ring.authenticate("two") is not None
    async with db.transaction() as conn:
        await revoke_key(conn, "k2")  # a revocation alone changes the fingerprint too
    assert await ring.refresh_if_changed()
    assert ring.authenticate("two") is None
    assert not await ring.refresh_if_changed()
