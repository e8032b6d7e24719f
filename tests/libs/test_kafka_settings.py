"""Kafka settings: from the environment to the arguments of every aiokafka client, and the
consumer-group prefix on a real broker."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import certifi
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from libs.messaging.consumer import Consumer
from libs.messaging.kafka import KafkaConnection, new_topics
from libs.runtime.settings import RuntimeSettings
from libs.store.database import Database
from tests.conftest import wait_until
from tests.libs.consumer_support import committed_offsets, harness_on, stream_of
from tests.libs.test_relay_consumer import Harness

CA = Path(certifi.where())


def settings_from(monkeypatch: pytest.MonkeyPatch, **env: str) -> RuntimeSettings:
    for name, value in env.items():
        monkeypatch.setenv(f"O2C_KAFKA_{name.upper()}", value)
    return RuntimeSettings()


def test_plaintext_by_default_with_a_client_id_per_service() -> None:
    kafka = RuntimeSettings(kafka_bootstrap="k1:9092,k2:9092").kafka("orders")

    assert kafka.client_kwargs() == {"bootstrap_servers": "k1:9092,k2:9092",
                                     "client_id": "o2c-orders", "security_protocol": "PLAINTEXT"}
    assert kafka.group_id("orders") == "orders"
    [topic] = new_topics(kafka, ["o2c.orders.events"], 3)
    assert (topic.num_partitions, topic.replication_factor) == (3, 1)
    assert topic.topic_configs == {"retention.ms": "-1", "cleanup.policy": "delete"}


def test_sasl_over_tls_reaches_every_kind_of_client(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(monkeypatch, bootstrap="kafka.internal:9093", security_protocol="SASL_SSL",
                             sasl_mechanism="SCRAM-SHA-512", sasl_username="o2c",
                             sasl_password="s3cret", ssl_cafile=str(CA), client_id="shop",
                             group_prefix="staging.", replication_factor="3",
                             min_insync_replicas="2")
    kafka = settings.kafka("credit")
    kwargs = kafka.client_kwargs()

    context = kwargs.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs()  # the CA file was read
    assert kwargs == {"bootstrap_servers": "kafka.internal:9093", "client_id": "shop-credit",
                      "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                      "sasl_plain_username": "o2c", "sasl_plain_password": "s3cret"}
    assert kafka.group_id("credit") == "staging.credit"
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(kafka)
    [topic] = new_topics(kafka, ["o2c.credit.events"], 6, {"cleanup.policy": "compact"})
    assert (topic.num_partitions, topic.replication_factor) == (6, 3)
    assert topic.topic_configs == {"cleanup.policy": "compact", "min.insync.replicas": "2"}

    async def build() -> None:  # aiokafka takes these arguments as they are (nothing connects)
        clients = [AIOKafkaProducer(**kafka.client_kwargs()), AIOKafkaConsumer(**kafka.client_kwargs()),
                   AIOKafkaAdminClient(**kafka.client_kwargs())]
        await clients[0].stop()
        await clients[1].stop()
        await clients[2].close()

    asyncio.run(build())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_client_certificate_is_loaded_for_mutual_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=o2c", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    kafka = RuntimeSettings(kafka_security_protocol="SSL", kafka_ssl_certfile=cert,
                            kafka_ssl_keyfile=key).kafka("orders")

    assert isinstance(kafka.client_kwargs()["ssl_context"], ssl.SSLContext)
    assert "sasl_mechanism" not in kafka.client_kwargs()
    broken = RuntimeSettings(kafka_security_protocol="SSL", kafka_ssl_certfile=key,
                             kafka_ssl_keyfile=key).kafka("orders")
    with pytest.raises(ssl.SSLError):
        broken.client_kwargs()


@pytest.mark.parametrize(("env", "complaint"), [
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "o2c"}, "SASL_PASSWORD"),
    ({"security_protocol": "SSL", "ssl_keyfile": str(CA)}, "needs O2C_KAFKA_SSL_CERTFILE"),
    ({"ssl_cafile": str(CA)}, "SSL or SASL_SSL"),
    ({"security_protocol": "SSL", "ssl_cafile": "/nowhere/ca.pem"}, "not found: /nowhere/ca.pem"),
    ({"replication_factor": "2", "min_insync_replicas": "3"}, "exceeds"),
    ({"security_protocol": "TLS"}, "security_protocol"),
    ({"group_prefix": "a b"}, "group_prefix"),
])
def test_inconsistent_settings_fail_at_start(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                             complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        settings_from(monkeypatch, **env)


@pytest.mark.broker
async def test_consumer_groups_carry_the_prefix_on_the_broker(db: Database, broker_bootstrap: str) -> None:
    """Two systems on one cluster: the consumer commits under ``<prefix><name>`` only."""
    async with harness_on(db, broker_bootstrap, 3) as harness:
        consumer = await _consume_with_a_prefix(harness)
        assert len(await harness.applied(consumer)) == 3
        prefixed = await committed_offsets(harness.bootstrap, f"staging.{consumer.name}", harness.topic)
        assert sum(offset for offset in prefixed.values() if offset > 0) == 3, prefixed
        bare = await committed_offsets(harness.bootstrap, consumer.name, harness.topic)
        assert set(bare.values()) == {-1}, bare  # nothing under the bare group id


async def _consume_with_a_prefix(harness: Harness) -> Consumer:
    """Three events applied by a consumer whose group carries the prefix ``staging.``."""
    plain = harness.consumer()
    consumer = Consumer(name=plain.name, db=plain.db, registry=plain.registry, handlers=plain.handlers,
                        topics=plain.topics, settings=plain.settings,
                        kafka=KafkaConnection(harness.bootstrap, group_prefix="staging."),
                        dead_letter_topic=plain.dead_letter_topic)
    await stream_of(harness.db, "acct-prefix", 3)
    harness.start(harness.relay().run)
    harness.start(consumer.run)

    async def committed() -> bool:
        offsets = await committed_offsets(harness.bootstrap, f"staging.{consumer.name}", harness.topic)
        return sum(offset for offset in offsets.values() if offset > 0) == 3

    await wait_until(committed, what="offsets committed under the prefixed group")
    return consumer
