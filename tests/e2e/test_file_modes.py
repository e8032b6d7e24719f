"""The running system's data directory is private: 0700 directories, 0600 databases and logs."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.e2e.conftest import System


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_databases_logs_and_directories_are_private(system: System) -> None:
    """On SQLite the database files too; on PostgreSQL the data stays in its server, but the
    data directory, the logs and the secrets beside them are private all the same."""
    data_dir = system.supervisor.data_dir
    private = sorted(system.supervisor.logs_dir.glob("*.log"))
    assert len(private) == len(system.supervisor.services) + (1 if system.supervisor.embedded else 0)
    private += [path for path in (data_dir / "admin-token", data_dir / "audit-key") if path.exists()]
    if system.backend == "sqlite":
        databases = sorted(data_dir.glob("*.db*"))
        names = {path.name for path in databases}
        for service in system.supervisor.services:
            assert {f"{service}.db", f"{service}.db-wal", f"{service}.db-shm"} <= names, names
        private += databases
    assert {path: mode(path) for path in private} == dict.fromkeys(private, 0o600)
    assert mode(data_dir) == 0o700 and mode(system.supervisor.logs_dir) == 0o700
