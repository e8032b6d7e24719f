"""A private PostgreSQL server for fault injection: started, killed (-9) and restarted at will.

The shared test server cannot be killed, so ``o2c chaos`` and the chaos tests run
their own: ``initdb`` into a fresh directory, ``postgres`` on a free port in its
own process group (so a kill takes the postmaster and every backend at once, the
way a crashed machine would), trust authentication on 127.0.0.1 only.
PostgreSQL refuses to run as root: as root the binaries run as the ``postgres``
user (``runuser``) and the directory is handed to it.

Self-contained on purpose (standard library only), so test helpers can import it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from libs.messaging.broker import free_port

__all__ = ["PrivatePostgres", "PrivatePostgresError", "find_bin_dir"]

_BIN_DIRS = ("/usr/lib/postgresql/{v}/bin",)
_VERSIONS = ("17", "16", "15", "14")
_RUN_AS = "postgres"
_READY_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0


class PrivatePostgresError(RuntimeError):
    """The private server could not be set up or did not come up (the message has its log tail)."""


def find_bin_dir() -> Path | None:
    """Where ``initdb`` and ``postgres`` live: ``O2C_PG_BIN`` (or ``O2C_TEST_PG_BIN``, as
    ``tests/pgserver.py`` names it), the ``PATH``, or a Debian layout."""
    explicit = os.environ.get("O2C_PG_BIN") or os.environ.get("O2C_TEST_PG_BIN")
    candidates = [Path(explicit)] if explicit else []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates += [Path(d.format(v=v)) for v in _VERSIONS for d in _BIN_DIRS]
    return next((c for c in candidates if (c / "initdb").exists() and (c / "postgres").exists()), None)


class PrivatePostgres:
    """One throw-away PostgreSQL server: :meth:`start`, :meth:`kill`, :meth:`start` again, :meth:`close`.

    :param root: a directory to create the cluster in; ``None``: a new temporary one
        (removed by :meth:`close`).
    :param port: ``None``: a free port, kept across restarts.
    """

    def __init__(self, root: Path | None = None, *, port: int | None = None,
                 bin_dir: Path | None = None) -> None:
        found = bin_dir or find_bin_dir()
        if found is None:
            raise PrivatePostgresError("no PostgreSQL binaries (initdb, postgres) found; set O2C_PG_BIN")
        self.bin_dir = found
        self._owns_root = root is None
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="o2c-pg-"))
        self.data_dir = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.port = port or free_port()
        self._as_root = os.geteuid() == 0
        self.user = _RUN_AS if self._as_root else pwd.getpwuid(os.geteuid()).pw_name
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """A ``postgresql://`` URL of the server's ``postgres`` database."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _argv(self, program: str, *args: str) -> list[str]:
        command = [str(self.bin_dir / program), *args]
        return ["runuser", "-u", _RUN_AS, "--", *command] if self._as_root else command

    def _init(self) -> None:
        """``initdb`` once (trust on 127.0.0.1, no fsync: a test server, killed on purpose)."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        if self._as_root:
            account = pwd.getpwnam(_RUN_AS)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        done = subprocess.run(
            self._argv("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", self.user,
                       "--no-sync", "-E", "UTF8"),
            capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PrivatePostgresError(f"initdb failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self, timeout: float = _READY_TIMEOUT_S) -> None:
        """Start the server (``initdb`` first if needed); return once it accepts connections.

        After a :meth:`kill` this is PostgreSQL's crash recovery (WAL replay).
        """
        if self.running:
            return
        self._init()
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self._proc = subprocess.Popen(
                self._argv("postgres", "-D", str(self.data_dir), "-p", str(self.port),
                           "-h", "127.0.0.1", "-k", str(self.root), "-c", "fsync=off",
                           "-c", "max_connections=200", "-c", "listen_addresses=127.0.0.1"),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            os.close(log)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise PrivatePostgresError(f"postgres exited at start:\n{self.log_tail()}")
            done = subprocess.run(
                [str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"],
                capture_output=True, check=False)
            if done.returncode == 0:
                return
            time.sleep(0.1)
        raise PrivatePostgresError(f"postgres not ready within {timeout:.0f}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """``kill -9`` the postmaster and every backend at once (its whole process group)."""
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()
        self._proc = None
        self._wait_backends_gone()

    def _wait_backends_gone(self) -> None:
        """A new postmaster refuses to start while old backends hold the shared memory."""
        pid_file = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                pid = int(pid_file.read_text().split()[0])
                os.kill(pid, 0)
            except (FileNotFoundError, ValueError, IndexError, ProcessLookupError):
                return
            except PermissionError:  # pragma: no cover - not ours; treat as alive
                pass
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server cleanly (SIGINT: fast shutdown), SIGKILL after a grace period."""
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGINT)
        try:
            self._proc.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
        self._proc = None

    def close(self) -> None:
        """Stop the server and remove its directory if this object created it."""
        self.stop()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, limit: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-limit:]
        return "(no log)"

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
