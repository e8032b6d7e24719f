"""A forged event written straight into a running system's database is found by both checks.

``o2c up`` generates the audit key outside the databases; the forger has the database and the
public formula, not the key. The relay seals the forged event and projections archives it, as
they would any event, and still ``GET /v1/audit/verify`` and ``o2c audit verify`` name it.

Then the forger cuts the forged event off again, with its seal: every link left is valid, and
the seal the projections' database anchored at the previous verification is what is missing.

This system is its own (tampering spoils it for every later test), on each backend.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
import pytest

from libs.events.partners import KeyRevoked
from libs.runtime.settings import RuntimeSettings
from libs.store.database import Database
from libs.store.store import EventStore
from tests.e2e.conftest import System, body, eventually, running_system
from tests.forgery import forge_head, truncate_newest


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def own_system(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    data_dir = tmp_path_factory.mktemp(f"o2c-tamper-{request.param}")
    with running_system(request.param, data_dir, prefix="e2etamper") as running:
        yield running


def _settings(system: System) -> RuntimeSettings:
    sup = system.supervisor
    return RuntimeSettings(data_dir=sup.data_dir, database_url=sup.database_url,
                           schema_prefix=sup.extra_env["O2C_SCHEMA_PREFIX"])


def _cli_verify(system: System) -> tuple[int, dict[str, Any]]:
    """``o2c audit verify`` as an operator runs it, as the README shows: the data directory,
    nothing else (not the database URL, not the schema prefix: ``o2c up`` recorded them)."""
    sup = system.supervisor
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("O2C_AUDIT_KEY", "O2C_DATABASE_URL", "O2C_SCHEMA_PREFIX"))}
    done = subprocess.run([sys.executable, "-m", "o2c", "audit", "verify", "--data-dir", str(sup.data_dir)],
                          env=env, capture_output=True, timeout=120, check=False)
    assert done.stdout, done.stderr.decode()[-3000:]
    return done.returncode, orjson.loads(done.stdout)


def _in_partners_database(system: System, attack: Callable[[Database], Awaitable[int]]) -> int:
    async def run() -> int:
        db = _settings(system).database("partners")
        try:
            return await attack(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def _forge_revocation(system: System, key_id: str) -> int:
    """Append a KeyRevoked at the head of the key's stream, straight into partners' database."""
    async def forge(db: Database) -> int:
        head = (await EventStore(db).load(f"key-{key_id}"))[-1]
        forged = await forge_head(db, head, KeyRevoked(key_id=key_id), actor="admin:bootstrap")
        assert forged.position is not None
        return forged.position

    return _in_partners_database(system, forge)


def test_a_forged_head_event_is_found_by_the_api_and_the_cli(own_system: System) -> None:
    system = own_system
    assert (system.supervisor.data_dir / "audit-key").stat().st_mode & 0o077 == 0
    with system.client("partners") as partners:
        issued = body(partners.post("/v1/keys", json={"role": "auditor", "name": "tamper"}), 201)
    with system.client("projections") as projections:
        verified = eventually(lambda: body(projections.get("/v1/audit/verify")),
                              lambda r: r["services"]["partners"].get("sealed", 0) >= 1
                              and r["services"]["projections"]["checked"] >= 1,
                              what="the key's event sealed and archived")
        assert verified["ok"] is True and verified["mode"] == "keyed", verified
        assert set(verified["services"]["partners"]["links"]) == {"k1"}
        code, cli = _cli_verify(system)
        assert (code, cli["ok"], cli["mode"]) == (0, True, "keyed"), cli

        position = _forge_revocation(system, issued["key_id"])

        def archived_and_sealed() -> dict[str, Any]:
            report = body(projections.get("/v1/audit/verify"))
            partners_report = report["services"]["partners"]
            archive = report["services"]["projections"]
            return {"sealed": partners_report.get("sealed", 0) >= partners_report["checked"],
                    "archived": archive["checked"] >= verified["services"]["projections"]["checked"] + 1,
                    "report": report}

        state = eventually(archived_and_sealed, lambda s: s["sealed"] and s["archived"],
                           what="the forged event sealed by the relay and archived by projections")
    report = state["report"]
    assert report["ok"] is False
    assert report["first_bad"] == {"service": "partners", "position": position}
    assert [p["kind"] for p in report["services"]["partners"]["problems"]] == ["unkeyed"]
    assert [p["kind"] for p in report["services"]["projections"]["problems"]] == ["unkeyed"]

    code, cli = _cli_verify(system)
    assert code == 1 and cli["ok"] is False
    assert cli["services"]["partners"]["first_bad"] == position
    assert cli["services"]["orders"]["ok"] is True

    # The forger covers the tracks: the forged event and its seal are cut off, the relay's
    # seal head set back. Every link left is valid; the seal anchored by the last verify is
    # what is missing.
    assert _in_partners_database(system, truncate_newest) == position
    with system.client("projections") as projections:
        report = body(projections.get("/v1/audit/verify"))
    assert [(p["position"], p["kind"]) for p in report["services"]["partners"]["problems"]] == [
        (position, "rolled-back")]
    code, cli = _cli_verify(system)
    assert code == 1
    assert [p["kind"] for p in cli["services"]["partners"]["problems"]] == ["rolled-back"]


