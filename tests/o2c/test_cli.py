"""The ``o2c`` command as an operator meets it: one-line errors, ``--version``, no stray files,
and one way of finding the running system (``o2c.system``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from libs.messaging.broker import free_port
from o2c import system


def o2c(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("O2C_") or k in {"O2C_TEST_PG_URL"}}
    return subprocess.run([sys.executable, "-m", "o2c", *args], env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=120, check=False)


def test_version_is_the_installed_package_version() -> None:
    from importlib.metadata import version

    done = o2c("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"o2c {version('o2c')}"


def test_a_wrong_data_dir_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    nowhere = tmp_path / "typo"
    for args in (["audit", "verify"], ["replay", "--service", "orders"]):
        done = o2c(*args, "--data-dir", str(nowhere))
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "--data-dir" in lines[0] and "--database-url" in lines[0], lines
    assert not nowhere.exists()


def test_a_service_that_is_down_is_one_line_naming_it(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    done = o2c("keys", "list", "--data-dir", str(tmp_path),
               env={"O2C_ADMIN_TOKEN": "x", "O2C_SERVICE_URLS": f'{{"partners": "{closed}"}}'})
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and closed in lines[0] and "o2c up" in lines[0], lines


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    done = o2c("--debug", "keys", "list", "--data-dir", str(tmp_path),
               env={"O2C_ADMIN_TOKEN": "x", "O2C_SERVICE_URLS": f'{{"partners": "{closed}"}}'})
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "ConnectError" in done.stderr


def test_chaos_with_replicas_asks_for_a_shared_database(tmp_path: Path) -> None:
    done = o2c("chaos", "--replicas", "--minutes", "0.1", "--data-dir", str(tmp_path / "chaos"))
    assert done.returncode == 2
    assert "--replicas needs --database-url" in done.stderr
    assert not (tmp_path / "chaos").exists()


def test_a_missing_admin_key_names_the_fix(tmp_path: Path) -> None:
    done = o2c("keys", "list", "--data-dir", str(tmp_path))
    assert done.returncode == 1
    assert "O2C_ADMIN_TOKEN" in done.stderr and "Traceback" not in done.stderr


def test_commands_find_what_o2c_up_recorded_unless_told_otherwise(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("O2C_DATABASE_URL", "O2C_SCHEMA_PREFIX", "O2C_SERVICE_URLS"):
        monkeypatch.delenv(name, raising=False)
    system.record(tmp_path, service_urls={"orders": "http://10.0.0.7:9000"},
                  database_url="postgresql://o2c@db/prod", schema_prefix="blue_")
    assert (tmp_path / system.SYSTEM_FILE).stat().st_mode & 0o077 == 0  # may hold a password

    found = system.settings(tmp_path)
    assert (found.database_url, found.schema_prefix) == ("postgresql://o2c@db/prod", "blue_")
    assert system.service_url("orders", tmp_path) == "http://10.0.0.7:9000"

    assert system.settings(tmp_path, "postgresql://o2c@other/x").database_url == "postgresql://o2c@other/x"
    monkeypatch.setenv("O2C_SERVICE_URLS", '{"orders": "http://elsewhere:1"}')
    assert system.service_url("orders", tmp_path) == "http://elsewhere:1"
    assert system.settings(tmp_path / "never-ran").database_url is None
