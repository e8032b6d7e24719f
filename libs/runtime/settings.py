"""Typed settings shared by every service (``O2C_`` environment prefix), failing fast."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.events.chain import AuditKeyError, Chain, parse_audit_keys
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
    audit_keys: SecretStr | None = Field(
        None, description="Keys of the tamper-evident chains, '<key id>:<secret>' separated by "
                          "commas; the first signs, all verify. Unset: the audit key file.")
    log_format: Literal["json", "console"] = Field(
        "json", description="One JSON object per log line, or readable lines for a terminal.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    audit_key_file: Path | None = Field(
        None, description="A file with the audit keys, one per line (a mounted secret, say). "
                          "Unset: <data_dir>/audit-key when it exists.")

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
