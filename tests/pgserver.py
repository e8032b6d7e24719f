"""A private PostgreSQL server that a test starts, stops (as a crash would) and starts again.

The shared server at ``O2C_TEST_PG_URL`` must never be restarted by a test, so
outage tests run their own: a fresh cluster in a temporary directory, on a free
port, with its socket in its own directory. PostgreSQL refuses to run as root,
so under root the server runs as the ``postgres`` user (``runuser``). Binaries
come from ``O2C_TEST_PG_BIN`` (default: PostgreSQL 15 on Debian); when they are
missing the test skips locally and fails in CI (``integration_unavailable``).

    with private_postgres() as server:
        database = Database(server.url, schema="s")
        ...
        server.crash()      # pg_ctl stop -m immediate: every connection drops at once
        server.start()      # the same cluster, the same port, the data kept
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from libs.messaging.broker import free_port
from tests.conftest import integration_unavailable

PG_BIN = Path(os.environ.get("O2C_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"
"""Who runs the server when the tests run as root."""


class PrivateServer:
    """One initialised cluster; ``start``/``stop``/``crash`` drive its postmaster."""

    def __init__(self, data_dir: Path, port: int, run_as: str | None) -> None:
        self.data_dir = data_dir
        self.port = port
        self._run_as = run_as

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def _run(self, *command: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self._run_as, "--"] if self._run_as else []
        result = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stdout}{result.stderr}"
                               f"{self._log_tail()}")
        return result

    def _log_tail(self) -> str:
        try:
            return "\n" + self.log_path.read_text()[-2000:]
        except OSError:
            return ""

    def init(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data_dir / "data"), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        """Start the postmaster and wait until it accepts connections."""
        options = (f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=100")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir / "data"), "-o", options,
                  "-l", str(self.log_path), "-w", "-t", "60", "start")

    def crash(self) -> None:
        """Stop at once, as a crash would: no checkpoint, every connection cut."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir / "data"), "-m", "immediate",
                  "-w", "stop")

    def stop(self) -> None:
        """Stop cleanly if it runs (nothing to do otherwise)."""
        pg_ctl = str(PG_BIN / "pg_ctl")
        prefix = ["runuser", "-u", self._run_as, "--"] if self._run_as else []
        status = subprocess.run([*prefix, pg_ctl, "-D", str(self.data_dir / "data"), "status"],
                                capture_output=True, text=True, timeout=30)
        if status.returncode == 0:
            self._run(pg_ctl, "-D", str(self.data_dir / "data"), "-m", "fast", "-w", "stop")


def _server_user() -> str | None:
    """``postgres`` when running as root (the server refuses root), else nobody: run as we are."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        integration_unavailable(f"running as root and there is no {SERVER_USER!r} user to run PostgreSQL")
    return SERVER_USER


@contextmanager
def private_postgres() -> Iterator[PrivateServer]:
    """A started private server, stopped and deleted afterwards."""
    missing = [name for name in ("initdb", "pg_ctl", "postgres") if not (PG_BIN / name).exists()]
    if missing:
        integration_unavailable(f"PostgreSQL binaries missing in {PG_BIN}: {', '.join(missing)}")
    run_as = _server_user()
    root = Path(tempfile.mkdtemp(prefix="o2c-pg-"))
    if run_as:
        user = pwd.getpwnam(run_as)
        os.chown(root, user.pw_uid, user.pw_gid)
    server = PrivateServer(root, free_port(), run_as)
    try:
        server.init()
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)
