"""``o2c migrate`` (the Kubernetes migration Job): every service's schema at its newest revision."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import orjson
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from typer.testing import CliRunner

from libs.runtime.settings import RuntimeSettings
from libs.store.migrate import alembic_config
from o2c.cli import app as cli
from o2c.migrate import SERVICES
from tests.conftest import PG_URL, _pg_reachable, drop_schemas, integration_unavailable


def _script(name: str) -> ScriptDirectory:
    from importlib import import_module

    spec = import_module(f"services.{name}.app").SPEC
    return ScriptDirectory.from_config(alembic_config([spec.migrations] if spec.migrations else []))


def _at_heads(name: str, current: set[str]) -> bool:
    """Every head of the service's chains is ``current`` or something ``current`` builds on."""
    script = _script(name)
    reached = {rev.revision for rev in script.revision_map.iterate_revisions(tuple(current), "base")}
    return bool(current) and set(script.get_heads()) <= reached


async def _revisions(settings: RuntimeSettings, name: str) -> set[str]:
    db = settings.database(name)
    try:
        async with db.read() as conn:
            return {row[0] for row in await conn.execute(text("SELECT version_num FROM alembic_version"))}
    finally:
        await db.dispose()


def _run(*args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["migrate", *args], env=env)
    assert result.exit_code == 0, result.output
    answer: dict[str, object] = orjson.loads(result.stdout)
    return answer


async def test_migrate_brings_every_sqlite_store_to_its_heads_and_again_is_a_no_op(tmp_path: Path) -> None:
    answer = await asyncio.to_thread(_run, "--data-dir", str(tmp_path), "--service", "orders")
    assert answer == {"migrated": ["orders"]}
    assert sorted(os.listdir(tmp_path)) == ["orders.db"]

    for _ in range(2):  # the second run finds everything migrated
        answer = await asyncio.to_thread(_run, "--data-dir", str(tmp_path))
        assert answer == {"migrated": list(SERVICES)}
    settings = RuntimeSettings(data_dir=tmp_path)
    for name in SERVICES:
        assert _at_heads(name, await _revisions(settings, name)), name


async def test_migrate_on_postgresql_migrates_one_schema_per_service() -> None:
    problem = await _pg_reachable()
    if problem:
        integration_unavailable(problem)
    prefix = f"m{uuid.uuid4().hex[:8]}_"
    env = {"O2C_SCHEMA_PREFIX": prefix}
    try:
        answer = await asyncio.to_thread(_run, "--database-url", PG_URL, env=env)
        assert answer == {"migrated": list(SERVICES)}
        settings = RuntimeSettings(database_url=PG_URL, schema_prefix=prefix)
        for name in SERVICES:
            assert _at_heads(name, await _revisions(settings, name)), name
    finally:
        await drop_schemas(f"{prefix}{name}" for name in SERVICES)


def test_migrate_refuses_an_unknown_service(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["migrate", "--data-dir", str(tmp_path), "--service", "billing"])
    assert result.exit_code == 2
    assert "no such service: billing" in result.output
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("module", ["o2c"])
def test_python_dash_m_o2c_is_the_cli(module: str) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "migrate" in done.stdout
