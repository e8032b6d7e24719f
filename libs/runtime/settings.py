"""Typed settings shared by every service (``O2C_`` environment prefix), failing fast."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.events.chain import AuditKeyError, Chain, parse_audit_keys
from libs.messaging.kafka import KafkaConnection, SaslMechanism, SecurityProtocol
from libs.store.database import Database

AUDIT_KEY_FILE = "audit-key"
"""Where ``o2c up`` keeps the generated audit key, in the data directory (mode 0600)."""

DEFAULT_PORTS = {
    "partners": 8101, "orders": 8102, "credit": 8103,
    "delivery": 8104, "rebates": 8105, "projections": 8106,
}

DEFAULT_OPS_PORTS = {name: port + 1000 for name, port in DEFAULT_PORTS.items()}
"""The internal port of each service (``/health``, ``/ready``, ``/metrics``): 9101-9106."""


def ops_port_of(service: str) -> int:
    """The internal port ``service`` listens on: ``O2C_<SERVICE>_OPS_PORT`` or the default."""
    return int(os.environ.get(f"O2C_{service.upper()}_OPS_PORT", DEFAULT_OPS_PORTS[service]))


class RuntimeSettings(BaseSettings):
    """Where a service keeps its data, which broker it uses, how it is reached."""

    model_config = SettingsConfigDict(env_prefix="O2C_", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = Field(
        None, description="PostgreSQL URL; each service then uses schema o2c_<service>. "
                          "Unset: one SQLite file per service in data_dir.")
    schema_prefix: str = Field("o2c_", pattern=r"^[a-z_][a-z0-9_]{0,40}$",
                               description="PostgreSQL schema of a service = prefix + name.")
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_client_id: str = Field("o2c", min_length=1, description=(
        "Client id prefix; each service's clients report '<client id>-<service>'."))
    kafka_group_prefix: str = Field("", pattern=r"^[A-Za-z0-9._-]{0,100}$", description=(
        "Put before every consumer group id ('<prefix><service>'): systems sharing a "
        "cluster then never share a group."))
    kafka_replication_factor: int = Field(1, ge=1, description="Of the topics o2c creates.")
    kafka_min_insync_replicas: int | None = Field(
        None, ge=1, description="The topics' min.insync.replicas; unset: the broker's default.")
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(
        None, description="CA bundle the brokers' certificates are checked against; unset: "
                          "the system's CAs.")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS).")
    kafka_ssl_keyfile: Path | None = Field(None, description="Its private key.")
    kafka_ssl_key_password: SecretStr | None = None
    admin_token: str | None = None
    host: str = "127.0.0.1"
    embedded: bool = Field(False, description="Running on the embedded broker (shorter group timeouts).")
    partitions: int = Field(3, ge=1)
    key_refresh_seconds: float = Field(1.0, gt=0)
    gap_heal_seconds: float = Field(
        30.0, gt=0, description="How long a consumer waits for a missing stream version before "
                                "healing it from the topics, then parking the stream with an alarm.")
    service_urls: dict[str, str] = Field(default_factory=dict,
                                         description="Base URLs of the other services (projections).")
    clock_start: AwareDatetime | None = Field(
        None, description="Rehearsal only: the business clock starts at this instant and runs "
                          "forward (libs/runtime/clock.py). Unset: the real clock.")
    clock_anchor: AwareDatetime | None = Field(
        None, description="The real instant the business clock reads clock_start (default: when "
                          "the process starts; o2c up sets one for every service).")
    audit_keys: SecretStr | None = Field(
        None, description="Keys of the tamper-evident chains, '<key id>:<secret>' separated by "
                          "commas; the first signs, all verify. Unset: the audit key file.")
    log_format: Literal["json", "console"] = Field(
        "json", description="One JSON object per log line, or readable lines for a terminal.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    audit_key_file: Path | None = Field(
        None, description="A file with the audit keys, one per line (a mounted secret, say). "
                          "Unset: <data_dir>/audit-key when it exists.")

    @model_validator(mode="after")
    def _kafka_is_consistent(self) -> RuntimeSettings:
        """Fail at start, not at the first connection."""
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(f"O2C_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                             "O2C_KAFKA_SASL_USERNAME and O2C_KAFKA_SASL_PASSWORD")
        if (self.kafka_ssl_keyfile is not None) and self.kafka_ssl_certfile is None:
            raise ValueError("O2C_KAFKA_SSL_KEYFILE needs O2C_KAFKA_SSL_CERTFILE")
        files = [self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile]
        if any(files) and not self.kafka_security_protocol.endswith("SSL"):
            raise ValueError("O2C_KAFKA_SSL_* files need O2C_KAFKA_SECURITY_PROTOCOL SSL or SASL_SSL")
        missing = [str(path) for path in files if path is not None and not path.is_file()]
        if missing:
            raise ValueError(f"Kafka TLS file(s) not found: {', '.join(missing)}")
        if (self.kafka_min_insync_replicas or 0) > self.kafka_replication_factor:
            raise ValueError("O2C_KAFKA_MIN_INSYNC_REPLICAS exceeds O2C_KAFKA_REPLICATION_FACTOR: "
                             "no produce with acks=all could ever succeed")
        return self

    def kafka(self, service: str) -> KafkaConnection:
        """How ``service``'s clients (producers, consumers, admin) reach the cluster."""
        def secret(value: SecretStr | None) -> str | None:
            return value.get_secret_value() if value is not None else None

        return KafkaConnection(
            self.kafka_bootstrap, client_id=f"{self.kafka_client_id}-{service}",
            group_prefix=self.kafka_group_prefix,
            replication_factor=self.kafka_replication_factor,
            min_insync_replicas=self.kafka_min_insync_replicas,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism, sasl_username=self.kafka_sasl_username,
            sasl_password=secret(self.kafka_sasl_password), ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile, ssl_keyfile=self.kafka_ssl_keyfile,
            ssl_key_password=secret(self.kafka_ssl_key_password))

    def database(self, service: str) -> Database:
        if self.database_url:
            return Database(self.database_url, schema=f"{self.schema_prefix}{service}")
        return Database(f"sqlite:///{(self.data_dir / f'{service}.db').resolve()}")

    def audit_chain(self) -> Chain:
        """The chain every store of this process links and seals with (``libs.events.chain``).

        ``O2C_AUDIT_KEYS`` wins, then ``O2C_AUDIT_KEY_FILE``, then ``<data_dir>/audit-key``;
        with none of them the chain is unkeyed (``verify`` then says so). A configured
        source that is missing, empty or malformed fails here, at start.
        """
        if self.audit_keys is not None and self.audit_keys.get_secret_value().strip():
            text, source = self.audit_keys.get_secret_value(), "O2C_AUDIT_KEYS"
        else:
            path = self.audit_key_file or self.data_dir / AUDIT_KEY_FILE
            if not path.is_file():
                if self.audit_key_file is not None:
                    raise AuditKeyError(f"the audit key file {path} does not exist")
                return Chain()
            text, source = path.read_text(encoding="utf-8"), str(path)
        keys = parse_audit_keys(text)
        if not keys:
            raise AuditKeyError(f"{source} holds no audit key")
        return Chain(keys)

    def url_of(self, service: str) -> str:
        """Where ``service`` answers: ``O2C_SERVICE_URLS`` (``o2c up`` sets it), else its port
        (``O2C_<SERVICE>_PORT`` or the default) on this machine."""
        if service in self.service_urls:
            return self.service_urls[service]
        port = os.environ.get(f"O2C_{service.upper()}_PORT", str(DEFAULT_PORTS[service]))
        return f"http://127.0.0.1:{port}"
