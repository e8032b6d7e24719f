"""``o2c up``: run the whole system on one machine.

The :class:`Supervisor` starts the embedded Kafka-protocol broker (unless an
external Kafka is given), then the six services, each as its own process
(``python -m services.<name>``) in its own process group with its own log file
under ``<data_dir>/logs/``, and waits until every service answers ``GET /health``.
:meth:`Supervisor.stop` sends SIGTERM to the services (SIGKILL after a grace
period) and then stops the broker with SIGINT (Tansu exits at once on SIGINT,
but drains connected clients for ~5 s on SIGTERM).

Services are configured through the environment (see ``../shared/API.md``):
``O2C_DATA_DIR``, ``O2C_DATABASE_URL`` (PostgreSQL, one schema per service),
``O2C_KAFKA_BOOTSTRAP``, ``O2C_ADMIN_TOKEN``, ``O2C_HOST``, ``O2C_<NAME>_PORT``,
``O2C_AUDIT_KEY_FILE`` (see :func:`resolve_audit_key`) and ``O2C_EMBEDDED=1`` when
the embedded broker is used.

A child that dies is restarted by :meth:`Supervisor.check`: at once, and with
exponential back-off while it keeps crashing (``o2c.restarts``); the others keep
serving, and :meth:`Supervisor.status` says which child waits for its restart.
The data directory and everything o2c writes in it are private (0700/0600; the
children run with umask 077, see ``o2c.private_files``).

The embedded broker keeps everything in memory. Its port is remembered in
``<data_dir>/broker.port`` so a restart of ``o2c up`` reuses it; the services'
relays notice that the broker lost its data and republish their stores.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import ValidationError

from libs.events.base import format_timestamp, utc_now
from libs.events.topics import DEAD_LETTER_TOPIC, PUBLISHERS, topic_for
from libs.messaging.broker import (
    BrokerStartError,
    EmbeddedBroker,
    client_host,
    free_port,
    read_tail,
    signal_group,
)
from libs.messaging.kafka import KafkaConnection, ensure_topics, wait_until_answering
from libs.runtime.clock import CLOCK_ANCHOR_ENV, CLOCK_START_ENV
from libs.runtime.settings import AUDIT_KEY_FILE, DEFAULT_PORTS, RuntimeSettings
from o2c.loop_thread import LoopThread
from o2c.private_files import PRIVATE_UMASK, make_private, open_private, private_dir, write_private
from o2c.restarts import RestartPolicy, Restarts
from o2c.system import ADMIN_TOKEN_FILE, record

__all__ = [
    "DEFAULT_BROKER_PORT",
    "DEFAULT_PORTS",
    "SERVICES",
    "RestartPolicy",
    "ServiceStartError",
    "Supervisor",
    "SupervisorError",
    "resolve_admin_token",
    "resolve_audit_key",
    "up_command",
]

T = TypeVar("T")
SERVICES: tuple[str, ...] = tuple(DEFAULT_PORTS)
DEFAULT_HOST = "127.0.0.1"
#: First choice for the embedded broker when no port is remembered yet (Kafka's usual port);
#: a free port is used when it is taken.
DEFAULT_BROKER_PORT = 9092
ADMIN_TOKEN_ENV = "O2C_ADMIN_TOKEN"
AUDIT_KEYS_ENV = "O2C_AUDIT_KEYS"
AUDIT_KEY_FILE_ENV = "O2C_AUDIT_KEY_FILE"
BROKER_PORT_FILE = "broker.port"
LOCK_FILE = "supervisor.lock"

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
BROKER_START_TIMEOUT_S = 15.0
EXTERNAL_KAFKA_TIMEOUT_S = 30.0
BROKER_STOP_TIMEOUT_S = 5.0

_POLL_INTERVAL_S = 0.1
_HEALTH_TIMEOUT_S = 1.0


class SupervisorError(RuntimeError):
    """``o2c up`` cannot start or keep running the system."""


class ServiceStartError(SupervisorError):
    """A service exited or did not answer ``/health`` in time (the message has its log tail)."""


# --------------------------------------------------------------------------- admin token


def resolve_admin_token(data_dir: Path) -> tuple[str, Path | None]:
    """The bootstrap admin secret and the file it lives in (``None``: from the environment).

    ``O2C_ADMIN_TOKEN`` wins. Otherwise ``<data_dir>/admin-token`` is read, or, when
    absent (or empty), a new ``secrets.token_urlsafe(32)`` is written there, created
    with mode 0600 from the start (never world-readable, not even briefly).
    """
    from_env = os.environ.get(ADMIN_TOKEN_ENV, "").strip()
    if from_env:
        return from_env, None
    path = Path(data_dir) / ADMIN_TOKEN_FILE
    with contextlib.suppress(FileNotFoundError):
        existing = path.read_text(encoding="utf-8").strip()
        if existing:
            return existing, path
        path.unlink()  # empty file: replace it with a fresh secret
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token, path


def resolve_audit_key(data_dir: Path) -> Path | None:
    """The file holding the audit keys the services sign with (``None``: the environment has them).

    ``O2C_AUDIT_KEYS`` or ``O2C_AUDIT_KEY_FILE`` win (the services read them themselves).
    Otherwise ``<data_dir>/audit-key`` is used, created on first start, mode 0600 from the
    start, with one key ``k1``. The database never holds it: that is what makes the
    chains keyed (``libs.events.chain``). To rotate, put a new key on the first line
    (it signs) and keep the old ones below (they verify what they signed).
    """
    if any(os.environ.get(name, "").strip() for name in (AUDIT_KEYS_ENV, AUDIT_KEY_FILE_ENV)):
        return None
    path = Path(data_dir) / AUDIT_KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        if path.read_text(encoding="utf-8").strip():
            return path
        path.unlink()  # empty: nothing was signed with it, start afresh
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f"k1:{secrets.token_hex(32)}\n")
    return path


# --------------------------------------------------------------------------- helpers


def _port_free(host: str, port: int) -> bool:
    """True when ``host:port`` can be bound right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _mask_password(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for printing)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _load_libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:  # pragma: no cover - exotic libc
        return None


_LIBC = _load_libc()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: get SIGTERM if the supervisor dies (Linux).

    Children live in their own sessions so a terminal Ctrl-C reaches only the
    supervisor; this keeps them from outliving a supervisor that was SIGKILLed.
    """
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def _stamp(log_path: Path, what: str) -> None:
    """Append a separator line so consecutive runs are easy to tell apart in a log (file 0600)."""
    private_dir(log_path.parent)
    with open_private(log_path) as handle:
        handle.write(f"\n=== o2c up: {what} at {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())


# --------------------------------------------------------------------------- supervisor


class Supervisor:
    """Runs the embedded broker (or uses an external Kafka) and the six service processes.

    :param data_dir: SQLite files, logs, the admin token file and ``broker.port`` live here.
    :param database_url: a ``postgresql://`` URL (one schema per service); ``None``: SQLite
        files in ``data_dir`` (an inherited ``O2C_DATABASE_URL`` is then removed from the
        children's environment).
    :param kafka: external bootstrap servers; ``None`` starts the embedded broker.
    :param host: interface the services bind (``O2C_HOST``).
    :param ports: explicit port per service; missing names fall back to ``base_port + index``
        when ``base_port`` is given, else to ``O2C_<NAME>_PORT`` or :data:`DEFAULT_PORTS`.
        Each service's internal port (``/health``, ``/ready``, ``/metrics``) is
        ``O2C_<NAME>_OPS_PORT``, else its port + 1000, else (explicit ``ports``) a free one.
    :param admin_token: the bootstrap admin secret; ``None``: :func:`resolve_admin_token`.
    :param broker_port: the embedded broker's port; ``None``: the port remembered in
        ``<data_dir>/broker.port`` if free, else ``preferred_broker_port`` if free, else any
        free port (then remembered).
    :param module_template: module run per service, ``{name}`` is replaced (tests use fakes).
    :param python_path: directories put first on the children's ``PYTHONPATH``.
    :param extra_env: extra environment for the children (applied last).
    :param create_topics: create the service topics once the broker is up, with the partition
        count every relay and consumer is configured with (``O2C_PARTITIONS``), before any
        client can auto-create them with another count.
    :param restart_policy: the back-off of a crash-looping child (:class:`RestartPolicy`).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        database_url: str | None = None,
        kafka: str | None = None,
        host: str = DEFAULT_HOST,
        services: Sequence[str] = SERVICES,
        ports: Mapping[str, int] | None = None,
        base_port: int | None = None,
        admin_token: str | None = None,
        broker_port: int | None = None,
        preferred_broker_port: int | None = DEFAULT_BROKER_PORT,
        module_template: str = "services.{name}",
        python_path: Sequence[Path | str] = (),
        extra_env: Mapping[str, str] | None = None,
        create_topics: bool = True,
        start_timeout: float = START_TIMEOUT_S,
        stop_timeout: float = STOP_TIMEOUT_S,
        restart_policy: RestartPolicy | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.logs_dir = self.data_dir / "logs"
        self.database_url = database_url or None
        self.kafka = kafka or None
        self.host = host
        self.services: tuple[str, ...] = tuple(services)
        try:  # the services read the same environment: fail here, not in six logs
            self.settings = RuntimeSettings()
        except ValidationError as error:
            raise SupervisorError(f"invalid settings: {error}") from error
        self.partitions = self.settings.partitions
        self.ports = self._resolve_ports(ports or {}, base_port)
        self.ops_ports: dict[str, int] = {}
        for name, port in self.ports.items():  # free ones differ from every port handed out before
            self.ops_ports[name] = (int(os.environ.get(f"O2C_{name.upper()}_OPS_PORT", 0))
                                    or (free_port(taken=self._handed_out()) if ports else port + 1000))
        private_dir(self.data_dir)
        if admin_token:
            self.admin_token, self.admin_token_path = admin_token, None
        else:
            self.admin_token, self.admin_token_path = resolve_admin_token(self.data_dir)
        self.audit_key_path = resolve_audit_key(self.data_dir)
        self.broker_port = broker_port
        self.preferred_broker_port = preferred_broker_port
        self.module_template = module_template
        self.python_path = [str(Path(p).resolve()) for p in python_path]
        self.extra_env = dict(extra_env or {})
        self.create_topics = create_topics
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.clock_anchor = format_timestamp(utc_now())
        """The real instant a rehearsal clock (``O2C_CLOCK_START``) starts at, for every service."""

        self._bootstrap: str | None = self.kafka
        self._broker: EmbeddedBroker | None = None
        self._loop: LoopThread | None = None  # runs the async launcher and admin calls
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._restarts = Restarts(restart_policy or RestartPolicy())
        self._lock_handle: IO[str] | None = None

    # -- configuration

    def _resolve_ports(self, ports: Mapping[str, int], base_port: int | None) -> dict[str, int]:
        unknown = set(ports) - set(self.services)
        if unknown:
            raise ValueError(f"ports given for unknown services: {sorted(unknown)}")
        resolved: dict[str, int] = {}
        for index, name in enumerate(self.services):
            if name in ports:
                resolved[name] = int(ports[name])
            elif base_port is not None:
                resolved[name] = base_port + index
            else:
                default = DEFAULT_PORTS.get(name, 8100 + index + 1)
                resolved[name] = int(os.environ.get(f"O2C_{name.upper()}_PORT", default))
        if len(set(resolved.values())) != len(resolved):
            raise ValueError(f"two services share a port: {resolved}")
        return resolved

    @property
    def embedded(self) -> bool:
        """True when the supervisor runs its own broker (no external ``kafka``)."""
        return self.kafka is None

    @property
    def bootstrap(self) -> str:
        """Kafka bootstrap servers the services use (known once the broker is up)."""
        if self._bootstrap is None:
            raise RuntimeError("the embedded broker is not started yet: call start() first")
        return self._bootstrap

    @property
    def broker_log(self) -> Path:
        return self.logs_dir / "broker.log"

    def log_path(self, name: str) -> Path:
        """The log file of service ``name`` (stdout and stderr)."""
        return self.logs_dir / f"{name}.log"

    def urls(self) -> dict[str, str]:
        """Base URL of every service, e.g. ``{"partners": "http://127.0.0.1:8101", ...}``."""
        host = client_host(self.host)
        if ":" in host:
            host = f"[{host}]"
        return {name: f"http://{host}:{port}" for name, port in self.ports.items()}

    def ops_urls(self) -> dict[str, str]:
        """Where each service's internal endpoints (``/health``, ``/ready``, ``/metrics``) answer."""
        public = self.urls()
        return {name: public[name].rsplit(":", 1)[0] + f":{port}"
                for name, port in self.ops_ports.items()}

    def pids(self) -> dict[str, int]:
        """Process ids of the running children (services by name, plus ``"broker"``)."""
        found = {name: proc.pid for name, proc in self._procs.items() if proc.poll() is None}
        if self._broker is not None and self._broker.pid is not None:
            found["broker"] = self._broker.pid
        return found

    @property
    def clock_start(self) -> str | None:
        """The rehearsal clock's start the services get (``O2C_CLOCK_START``), if any."""
        return self.extra_env.get(CLOCK_START_ENV) or os.environ.get(CLOCK_START_ENV) or None

    def service_env(self) -> dict[str, str]:
        """The environment a service process gets (inherited environment + o2c settings)."""
        env = dict(os.environ)
        env.update(
            O2C_DATA_DIR=str(self.data_dir),
            O2C_KAFKA_BOOTSTRAP=self.bootstrap,
            O2C_ADMIN_TOKEN=self.admin_token,
            O2C_HOST=self.host,
            O2C_PARTITIONS=str(self.partitions),
            PYTHONUNBUFFERED="1",
        )
        for service, port in self.ports.items():
            env[f"O2C_{service.upper()}_PORT"] = str(port)
            env[f"O2C_{service.upper()}_OPS_PORT"] = str(self.ops_ports[service])
        env.setdefault("O2C_LOG_FORMAT", "console" if sys.stdout.isatty() else "json")
        env["O2C_SERVICE_URLS"] = json.dumps(self.urls())  # how each service reaches the others
        if self.audit_key_path is not None:
            env[AUDIT_KEY_FILE_ENV] = str(self.audit_key_path)
        if self.database_url:
            env["O2C_DATABASE_URL"] = self.database_url
        else:
            env.pop("O2C_DATABASE_URL", None)
        if self.embedded:
            env["O2C_EMBEDDED"] = "1"
        else:
            env.pop("O2C_EMBEDDED", None)
        if self.python_path:
            inherited = env.get("PYTHONPATH")
            env["PYTHONPATH"] = os.pathsep.join([*self.python_path, *([inherited] if inherited else [])])
        env.update(self.extra_env)
        if self.clock_start and not env.get(CLOCK_ANCHOR_ENV):
            env[CLOCK_ANCHOR_ENV] = self.clock_anchor  # one anchor: every service reads one clock
        return env

    # -- lifecycle

    def start(self) -> None:
        """Start the broker (embedded mode) and every service; return once all answer ``/health``.

        On any failure everything already started is stopped before the error propagates.

        :raises SupervisorError: data dir in use, a port taken, the broker did not come up.
        :raises ServiceStartError: a service exited early or stayed unhealthy (with log tail).
        """
        if self._procs or self._broker is not None:
            raise SupervisorError("supervisor already started")
        try:
            self._acquire_lock()
            self._check_ports()
            private_dir(self.logs_dir)
            make_private(self.data_dir)
            record(self.data_dir, service_urls=self.urls(), database_url=self.database_url,
                   schema_prefix=self.extra_env.get("O2C_SCHEMA_PREFIX",
                                                  os.environ.get("O2C_SCHEMA_PREFIX")))
            if self.embedded:
                self._start_broker()
            else:
                self._wait_external_kafka()
            if self.create_topics:
                self._ensure_topics()
            for name in self.services:
                self._spawn(name, "start")
            self._wait_healthy(self.services)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> dict[str, int]:
        """Stop the services (SIGTERM, SIGKILL after ``stop_timeout``), then the broker (SIGINT).

        Idempotent. Returns the exit code of each child that was still running.
        """
        codes = self._stop_services(list(self.services))
        self._restarts.forget("broker")
        if self._broker is not None and (code := self._stop_broker(BROKER_STOP_TIMEOUT_S)) is not None:
            codes["broker"] = code
        if self.kafka is None:
            self._bootstrap = None
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        self._release_lock()
        return codes

    def restart_service(self, name: str, *, wait: bool = True) -> None:
        """Stop service ``name`` (gracefully) and start it again; by default wait for ``/health``."""
        if name not in self.services:
            raise ValueError(f"unknown service {name!r}; known: {', '.join(self.services)}")
        self._stop_services([name])
        self._spawn(name, "restart")
        if wait:
            self._wait_healthy([name])

    def check(self) -> list[str]:
        """Restart whatever died: the embedded broker (empty again; relays republish) and services.

        Returns a line per event (a child died, was restarted, waits for its restart), each
        also written to that child's log. A child is restarted at once after its first crash
        and with growing waits while it keeps crashing (:class:`RestartPolicy`); services are
        respawned without waiting for their health, so a crash loop shows up on later calls.
        Nothing here stops the other children: a crash loop is reported, never fatal
        (:meth:`status` tells which child waits).
        """
        events = self._check_broker() if self.embedded else []
        for name in self.services:
            proc = self._procs.get(name)
            if proc is not None and proc.poll() is None:
                continue
            died = ""
            if proc is not None:
                signal_group(proc.pid, signal.SIGKILL)  # leftovers of its group, if any
                del self._procs[name]
                died = self._died(name, proc.returncode, self.log_path(name))
            if not self._restarts.due(name):
                events += [died] if died else []
                continue
            self._spawn(name, "restart")
            events.append(f"{died or name + ' back-off over'}; restarted (log: {self.log_path(name)})")
        return events

    def status(self) -> dict[str, dict[str, Any]]:
        """Each child's ``{state, pid, restarts, crashes_in_a_row, last_exit_code, restart_in_s}``.

        ``state``: ``running``, ``backoff`` (dead, its restart pending after ``restart_in_s``)
        or ``stopped``. The embedded broker is listed as ``"broker"``.
        """
        pids = self.pids()
        names = [*(["broker"] if self.embedded else []), *self.services]
        return {name: {**self._restarts.status(name, name in pids), "pid": pids.get(name)}
                for name in names}

    def _died(self, name: str, code: int | None, log_path: Path, failure: str = "") -> str:
        """Note that ``name`` died with ``code`` (or ``failure``: it could not start) and say so,
        in its log too, with the back-off before its restart if any."""
        delay = self._restarts.exited(name, code)
        how = failure or f"exited with code {code}"
        if delay <= 0:
            return f"{name} {how}"
        crashes = self._restarts.status(name, False)["crashes_in_a_row"]
        line = (f"{name} {how}, {crashes} crashes in a row: crash loop, "
                f"restarting it in {delay:.1f}s (log: {log_path})")
        _stamp(log_path, line)
        return line

    def _check_broker(self) -> list[str]:
        """Restart the embedded broker when it died (on its port; services follow if it moved)."""
        died = ""
        if self._broker is not None and not self._broker.is_running:
            code = self._stop_broker(0.0)  # reaps what is left of its process group
            died = self._died("broker", code, self.broker_log)
        if self._broker is not None or not self._restarts.due("broker"):
            return [died] if died else []
        previous = self._bootstrap
        try:
            self._start_broker()
            if self.create_topics:
                self._ensure_topics()
        except SupervisorError as error:
            if self._broker is not None:
                self._stop_broker(0.0)
            return [*([died] if died else []),
                    self._died("broker", None, self.broker_log, f"failed to restart: {error}")]
        events = [f"{died or 'broker back-off over'}; restarted empty on {self.bootstrap}"]
        if self.bootstrap != previous:  # its port was taken meanwhile: services must follow
            running = list(self._procs)
            self._stop_services(running)
            for name in running:
                self._spawn(name, f"restart: broker moved to {self.bootstrap}")
            events.append(f"services restarted to use the broker on {self.bootstrap}")
        return events

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals: lock and ports

    def _acquire_lock(self) -> None:
        """One supervisor per data dir: the SQLite files and the broker port are not shareable."""
        path = self.data_dir / LOCK_FILE
        handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise SupervisorError(
                f"{self.data_dir} is in use by another `o2c up` (pid {holder}); "
                "stop it first or use another --data-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_handle = handle

    def _release_lock(self) -> None:
        if self._lock_handle is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_handle.fileno(), fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def _check_ports(self) -> None:
        busy = [f"{name} ({port})" for name, port in [*self.ports.items(), *self.ops_ports.items()]
                if not _port_free(self.host, port)]
        if busy:
            raise SupervisorError(
                f"port(s) already in use on {self.host}: {', '.join(busy)}. Is another `o2c up` "
                "running? Set O2C_<NAME>_PORT to move a service."
            )

    # -- internals: broker

    def _handed_out(self) -> set[int]:
        """The services' and their ops ports: a free port picked for another listener must
        not be one of them (they are free until their service binds them)."""
        return {*self.ports.values(), *self.ops_ports.values()}

    def _broker_port_candidates(self) -> list[int]:
        if self.broker_port is not None:
            return [self.broker_port]
        candidates: list[int] = []
        with contextlib.suppress(OSError, ValueError):
            candidates.append(int((self.data_dir / BROKER_PORT_FILE).read_text().strip()))
        if self.preferred_broker_port is not None:
            candidates.append(self.preferred_broker_port)
        return [port for port in dict.fromkeys(candidates) if 0 < port < 65536]

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run an async launcher or admin call on the supervisor's own event loop."""
        if self._loop is None:
            self._loop = LoopThread("o2c-supervisor")
        return self._loop.run(coroutine)

    def _start_broker(self) -> None:
        """Start Tansu on the remembered port when possible, else on a free one (remembered)."""
        explicit = self.broker_port is not None
        ports = [
            port for port in self._broker_port_candidates() if explicit or _port_free(DEFAULT_HOST, port)
        ]
        if not explicit:
            ports.append(free_port(taken=self._handed_out()))
        last_error: BrokerStartError | None = None
        for port in ports[:3]:
            broker = EmbeddedBroker(port, DEFAULT_HOST, self.broker_log, stop_signal=signal.SIGINT,
                                    start_timeout=BROKER_START_TIMEOUT_S)
            _stamp(self.broker_log, f"broker on {broker.bootstrap_servers}")
            try:
                self._run(broker.start())
            except BrokerStartError as error:  # it stopped what it started
                last_error = error
                continue
            except OSError as error:  # the extra is missing, say
                raise SupervisorError(f"could not execute the embedded broker: {error}") from error
            self._broker = broker
            self._bootstrap = broker.bootstrap_servers
            self._restarts.started("broker")
            with contextlib.suppress(OSError):
                write_private(self.data_dir / BROKER_PORT_FILE, f"{port}\n")
            return
        raise SupervisorError(f"the embedded broker did not start: {last_error}")

    def _stop_broker(self, grace_s: float) -> int | None:
        """Stop the embedded broker (SIGINT, SIGKILL after ``grace_s``); its exit code."""
        broker, self._broker = self._broker, None
        assert broker is not None
        return self._run(broker.stop(grace_s))

    def _kafka(self) -> KafkaConnection:
        """How the supervisor itself talks to the cluster (the services' settings, its client id)."""
        kafka = self.settings.kafka("supervisor")
        if self.embedded:
            return KafkaConnection(self.bootstrap, client_id=kafka.client_id)
        return dataclasses.replace(kafka, bootstrap_servers=self.bootstrap)

    def _wait_external_kafka(self) -> None:
        assert self.kafka is not None
        try:
            self._run(wait_until_answering(self._kafka(), EXTERNAL_KAFKA_TIMEOUT_S))
        except TimeoutError as error:
            raise SupervisorError(f"Kafka at {self.kafka} is not reachable: {error}") from error

    def _ensure_topics(self) -> None:
        topics = [topic_for(name) for name in PUBLISHERS] + [DEAD_LETTER_TOPIC]
        try:
            self._run(ensure_topics(self._kafka(), topics, self.partitions))
        except Exception as error:
            raise SupervisorError(f"could not create topics on {self.bootstrap}: {error}") from error

    # -- internals: services

    def _spawn(self, name: str, why: str) -> None:
        log_path = self.log_path(name)
        _stamp(log_path, why)
        module = self.module_template.format(name=name)
        # PDEATHSIG follows the spawning *thread*: only tie children to the main thread.
        in_main_thread = threading.current_thread() is threading.main_thread()
        with open_private(log_path) as log_file:
            self._procs[name] = subprocess.Popen(
                [sys.executable, "-m", module],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=self.service_env(),
                start_new_session=True,
                preexec_fn=_die_with_parent if in_main_thread else None,
                umask=PRIVATE_UMASK,
            )
        self._restarts.started(name)

    def _wait_healthy(self, names: Sequence[str]) -> None:
        pending = {name: f"{self.ops_urls()[name]}/health" for name in names}
        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(timeout=_HEALTH_TIMEOUT_S, trust_env=False) as client:
            while pending:
                for name, url in list(pending.items()):
                    proc = self._procs[name]
                    if proc.poll() is not None:
                        raise ServiceStartError(
                            f"service {name} exited with code {proc.returncode} while starting "
                            f"(log: {self.log_path(name)})\n--- log tail ---\n"
                            f"{read_tail(self.log_path(name))}"
                        )
                    try:
                        if client.get(url).status_code == 200:
                            del pending[name]
                    except httpx.HTTPError:
                        pass
                if not pending:
                    return
                if time.monotonic() > deadline:
                    details = "\n".join(
                        f"--- {name}: {self.log_path(name)} ---\n{read_tail(self.log_path(name), 1500)}"
                        for name in pending
                    )
                    raise ServiceStartError(
                        f"no healthy answer within {self.start_timeout:.0f}s from: "
                        f"{', '.join(pending)}\n{details}"
                    )
                time.sleep(_POLL_INTERVAL_S)

    def _stop_services(self, names: Sequence[str]) -> dict[str, int]:
        procs = {name: self._procs.pop(name) for name in names if name in self._procs}
        for name in names:
            self._restarts.forget(name)
        for proc in procs.values():
            if proc.poll() is None:
                signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        codes: dict[str, int] = {}
        for name, proc in procs.items():
            try:
                codes[name] = proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(proc.pid, signal.SIGKILL)
                codes[name] = proc.wait()
            signal_group(proc.pid, signal.SIGKILL)  # anything the service left in its group
        return codes


# --------------------------------------------------------------------------- o2c up


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _print_summary(sup: Supervisor, print_: Callable[..., None]) -> None:
    from rich.table import Table

    table = Table(title="o2c is up", title_justify="left")
    table.add_column("service")
    table.add_column("url")
    table.add_column("/health /ready /metrics")
    table.add_column("log")
    for name, url in sup.urls().items():
        table.add_row(name, url, sup.ops_urls()[name], str(sup.log_path(name)))
    print_(table)
    broker = f"embedded broker {sup.bootstrap} (in memory)" if sup.embedded else f"Kafka {sup.bootstrap}"
    store = (
        f"PostgreSQL {_mask_password(sup.database_url)} (schemas o2c_<service>)"
        if sup.database_url
        else f"SQLite files in {sup.data_dir}"
    )
    print_(f"{broker}; {store}")
    print_(
        "No gateway here: call each service on its own port (paths never collide; "
        "`docker compose up` adds a gateway on :8080 routing by path)."
    )
    urls = sup.urls()
    if sup.admin_token_path is not None:
        print_(f"Admin token: in {sup.admin_token_path} (mode 0600), e.g.")
        keys_url = f"{urls.get('partners', '')}/v1/keys"
        print_(f'  curl -H "Authorization: Bearer $(cat {sup.admin_token_path})" {keys_url}', soft_wrap=True)
    else:
        print_(f"Admin token: from ${ADMIN_TOKEN_ENV}.")
    if "projections" in urls:
        print_(f"Dashboard: {urls['projections']}/dashboard")
    print_("Press Ctrl-C to stop.")


def up_command(
    data_dir: Path,
    database_url: str | None,
    kafka: str | None,
    host: str,
    *,
    options: Mapping[str, Any] | None = None,
) -> None:
    """Blocking ``o2c up``: start everything, print where it is, run until Ctrl-C or SIGTERM.

    Children that die are restarted (the embedded broker comes back empty; relays
    republish); one that keeps crashing is retried with back-off and reported in red,
    while the others keep serving. Returns normally (exit code 0) after a requested stop;
    exits with code 1 when the system cannot start. ``options`` are passed on to
    :class:`Supervisor` (e.g. ``ports``, ``base_port``).
    """
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    err = Console(stderr=True)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt) if in_main_thread else None
    if in_main_thread:  # Ctrl-C stops us even when started as a background job (SIGINT ignored)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    sup: Supervisor | None = None
    failed = False
    try:
        sup = Supervisor(data_dir, database_url=database_url, kafka=kafka, host=host, **dict(options or {}))
        if start := sup.clock_start:
            err.print(f"[bold yellow]REHEARSAL CLOCK: every service's business time starts at "
                      f"{escape(start)} ({CLOCK_START_ENV}); never in production[/]")
        with console.status("starting the broker and the services..."):
            sup.start()
        _print_summary(sup, console.print)
        while True:
            time.sleep(0.5)
            for event in sup.check():
                colour = "red" if "crash loop" in event or "failed" in event else "yellow"
                err.print(f"[{colour}]{escape(event)}[/{colour}]", highlight=False)
    except KeyboardInterrupt:
        console.print("stopping...")
    except SupervisorError as error:
        failed = True
        err.print(f"[red]o2c up failed:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
    finally:
        if in_main_thread:  # a second Ctrl-C must not abandon children half-stopped
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if sup is not None:
                sup.stop()
        finally:
            if in_main_thread:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                signal.signal(signal.SIGTERM, previous_term or signal.SIG_DFL)
    if failed:
        raise SystemExit(1)
    console.print("stopped.")
