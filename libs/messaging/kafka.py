"""Talking to a Kafka cluster: how to connect (security, client id, group names) and the
few admin calls o2c makes (create its topics, read end offsets, probe readiness).

Plain Kafka protocol through aiokafka: works the same on Apache Kafka, a managed
cluster and the embedded development broker (:mod:`libs.messaging.broker`).

Every client o2c opens (the relay's producer, the consumers, the dead-letter
producer, the admin client, the healing reader) is built from one
:class:`KafkaConnection`, so a cluster that wants TLS, SASL or a shared-cluster
group prefix gets it everywhere. Functions here accept a bare bootstrap string too
(plaintext, no prefix), which is what the embedded broker needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, OffsetOutOfRangeError, TopicAlreadyExistsError, for_code
from aiokafka.helpers import create_ssl_context

__all__ = [
    "TOPIC_CONFIG",
    "KafkaConnection",
    "SecurityProtocol",
    "answers_metadata",
    "connection",
    "end_offsets",
    "ensure_topics",
    "holds_offset",
    "new_topics",
    "wait_until_answering",
]

logger = logging.getLogger(__name__)

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

_PROBE_REQUEST_TIMEOUT_MS = 2000
_TOPIC_VISIBLE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class KafkaConnection:
    """Where the cluster is and how to talk to it; built by ``RuntimeSettings.kafka``.

    :param replication_factor: of every topic o2c creates (1 suits one broker only).
    :param min_insync_replicas: the topics' ``min.insync.replicas`` (with ``acks=all``,
        the relay's produce fails rather than lands on fewer replicas); ``None``: the
        broker's default.
    :param group_prefix: put before every consumer group id, so two systems (or two
        environments) on one cluster never share a group.
    """

    bootstrap_servers: str
    client_id: str = "o2c"
    group_prefix: str = ""
    replication_factor: int = 1
    min_insync_replicas: int | None = None
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "PLAIN"
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: str | None = field(default=None, repr=False)

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def group_id(self, name: str) -> str:
        """The consumer group of consumer ``name`` on this cluster."""
        return f"{self.group_prefix}{name}"

    @functools.cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context (built once: it reads the files), or ``None`` without TLS."""
        if not self.uses_tls:
            return None
        return create_ssl_context(cafile=self.ssl_cafile, certfile=self.ssl_certfile,
                                  keyfile=self.ssl_keyfile, password=self.ssl_key_password)

    def client_kwargs(self) -> dict[str, Any]:
        """The connection arguments every aiokafka client takes (producer, consumer, admin)."""
        kwargs: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers,
                                  "client_id": self.client_id,
                                  "security_protocol": self.security_protocol}
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context
        if self.uses_sasl:
            kwargs.update(sasl_mechanism=self.sasl_mechanism,
                          sasl_plain_username=self.sasl_username,
                          sasl_plain_password=self.sasl_password)
        return kwargs

    def topic_config(self, config: Mapping[str, str]) -> dict[str, str]:
        """``config`` plus ``min.insync.replicas`` when one is configured."""
        if self.min_insync_replicas is None:
            return dict(config)
        return {**config, "min.insync.replicas": str(self.min_insync_replicas)}


def connection(kafka: KafkaConnection | str) -> KafkaConnection:
    """``kafka`` as a connection: a bare bootstrap string means plaintext, no prefix."""
    return KafkaConnection(kafka) if isinstance(kafka, str) else kafka


def _admin(kafka: KafkaConnection | str, **options: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**connection(kafka).client_kwargs(), **options)


async def answers_metadata(kafka: KafkaConnection | str) -> bool:
    """True when the cluster answers a metadata request with at least one broker."""
    admin = _admin(kafka, request_timeout_ms=_PROBE_REQUEST_TIMEOUT_MS)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except (TimeoutError, KafkaError, OSError):
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def wait_until_answering(kafka: KafkaConnection | str, within_s: float) -> None:
    """Wait until the cluster answers metadata requests; ``TimeoutError`` after ``within_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not await answers_metadata(kafka):
        if loop.time() >= deadline:
            raise TimeoutError(f"no answer from {connection(kafka).bootstrap_servers} "
                               f"within {within_s:.0f}s")
        await asyncio.sleep(0.2)


async def _all_topics(admin: AIOKafkaAdminClient) -> dict[str, dict[str, Any]]:
    """Metadata of every topic, keyed by name.

    Asks for *all* topics (no names), which never triggers broker-side auto-creation.
    """
    return {entry["topic"]: entry for entry in await admin.describe_topics(None)}


TOPIC_CONFIG = {"retention.ms": "-1", "cleanup.policy": "delete"}
"""Event topics keep their whole history: a consumer that starts late (or a new
service) reads every stream from its first version, which the consumers' order
guard requires. Brokers that ignore topic configs keep their own defaults."""


def new_topics(kafka: KafkaConnection | str, names: Iterable[str], partitions: int,
               config: Mapping[str, str] | None = None) -> list[NewTopic]:
    """What :func:`ensure_topics` asks the cluster to create: the connection's replication
    factor and ``min.insync.replicas`` on top of ``config`` (default :data:`TOPIC_CONFIG`)."""
    kafka = connection(kafka)
    configs = kafka.topic_config(TOPIC_CONFIG if config is None else config)
    return [NewTopic(name, partitions, kafka.replication_factor, topic_configs=dict(configs))
            for name in names]


async def ensure_topics(
    kafka: KafkaConnection | str,
    topics: Iterable[str],
    partitions: int = 3,
    config: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Create the missing ``topics`` (idempotent), wait until metadata shows them, and
    return the partition count of every wanted topic.

    A topic that already exists with another partition count is left as it is and
    reported: an error line here, and the count in the result, so that a caller
    whose mapping depends on the count (the relay) can refuse it. Such a topic was
    created by someone else, typically a broker that auto-creates topics on first
    use (the embedded broker always does, with 4 partitions; Apache Kafka does unless
    ``auto.create.topics.enable=false``) before this call could create it.
    ``TopicAlreadyExistsError`` from a concurrent creator is ignored; any other
    per-topic error is raised as the matching aiokafka error. ``config`` replaces
    :data:`TOPIC_CONFIG` for the topics this call creates (see :func:`new_topics`).
    """
    wanted = list(dict.fromkeys(topics))
    if not wanted:
        return {}
    admin = _admin(kafka)
    await admin.start()
    try:
        existing = await _all_topics(admin)
        counts = {name: len(existing[name]["partitions"]) for name in wanted if name in existing}
        missing = [name for name in wanted if name not in existing]
        if missing:
            counts.update(await _create(admin, new_topics(kafka, missing, partitions, config)))
    finally:
        await admin.close()
    for name, count in counts.items():
        if count != partitions:
            logger.error(
                "topic %s exists with %d partitions, configured %d: streams keyed by the "
                "configured count would move between partitions; fix the topic (see the "
                "README, Running against real Kafka)", name, count, partitions)
    return counts


async def _create(admin: AIOKafkaAdminClient, topics: list[NewTopic]) -> dict[str, int]:
    """Create ``topics``; the partition count of each once metadata shows it."""
    try:
        response = await admin.create_topics(topics)
    except TopicAlreadyExistsError:
        response = None
    if response is not None:
        _raise_topic_errors(response.topic_errors)
    names = [topic.name for topic in topics]
    known = await _wait_topics_visible(admin, names)
    return {name: len(known[name]["partitions"]) for name in names}


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


async def end_offsets(kafka: KafkaConnection | str, topic: str) -> dict[int, int]:
    """Map partition -> end offset (high watermark) of ``topic``; ``{}`` if it is absent.

    The existence check uses an all-topics metadata request, so a missing topic is
    *not* auto-created by this call (a per-topic request would, on the embedded broker
    and on Kafka with ``auto.create.topics.enable``). A relay can compare the result
    with what it has published to notice that the broker lost its data.
    """
    admin = _admin(kafka)
    await admin.start()
    try:
        metadata = (await _all_topics(admin)).get(topic)
    finally:
        await admin.close()
    if metadata is None or not metadata["partitions"]:
        return {}
    partitions = [TopicPartition(topic, p["partition"]) for p in metadata["partitions"]]
    consumer = AIOKafkaConsumer(**connection(kafka).client_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        offsets = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in sorted(offsets.items())}


async def holds_offset(kafka: KafkaConnection | str, topic: str, partition: int, offset: int,
                       timeout_ms: int = 2000) -> bool | None:
    """Whether the broker still serves the record at ``offset`` of ``topic``/``partition``.

    True: it does. False: the broker says the offset is out of range (the data is
    gone). None: no answer in time (a slow broker proves nothing). A fetch, not
    the listed end offset, is the test: some Kafka-protocol brokers report the
    end offset of multi-record batches imprecisely.
    """
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(**connection(kafka).client_kwargs(), enable_auto_commit=False,
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
