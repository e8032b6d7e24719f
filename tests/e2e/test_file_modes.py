"""The running system's data directory is private: 0700 directories, 0600 databases and logs."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.e2e.conftest import System


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_databases_logs_and_directories_are_private(system: System) -> None:
    if system.backend != "sqlite":
        pytest.skip("PostgreSQL keeps the data in its own server")
    data_dir = system.supervisor.data_dir
    databases = sorted(data_dir.glob("*.db*"))
    names = {path.name for path in databases}
    for service in system.supervisor.services:
        assert {f"{service}.db", f"{service}.db-wal", f"{service}.db-shm"} <= names, names
    logs = sorted(system.supervisor.logs_dir.glob("*.log"))
    assert len(logs) == len(system.supervisor.services) + 1
    assert {path: mode(path) for path in [*databases, *logs]} == dict.fromkeys([*databases, *logs], 0o600)
    assert mode(data_dir) == 0o700 and mode(system.supervisor.logs_dir) == 0o700
