"""What every o2c service process needs in its environment, and which variables exist at all."""

from __future__ import annotations

import os
from collections.abc import Mapping
from unittest import mock

from libs.runtime.settings import DEFAULT_PORTS, RuntimeSettings
from services.partners.settings import PartnersSettings

SERVICES = tuple(DEFAULT_PORTS)

REQUIRED = ("O2C_DATABASE_URL", "O2C_KAFKA_BOOTSTRAP", "O2C_ADMIN_TOKEN", "O2C_AUDIT_KEYS",
            "O2C_HOST", "O2C_SERVICE_URLS")
"""Set for every service on real infrastructure: PostgreSQL, Kafka, the bootstrap admin, the
keyed chains, listening beyond the pod or container, and how to reach the other services."""


def known_variables() -> set[str]:
    """Every ``O2C_`` variable a service reads: the settings classes' fields and the ports."""
    names = {f"O2C_{field.upper()}" for field in RuntimeSettings.model_fields}
    prefix = PartnersSettings.model_config.get("env_prefix", "")
    names |= {f"{prefix}{field}".upper() for field in PartnersSettings.model_fields}
    names |= {f"O2C_{service.upper()}_PORT" for service in SERVICES}
    return names


def settings_from(environment: Mapping[str, str]) -> RuntimeSettings:
    """The settings a service builds from ``environment`` (parsed exactly as at start)."""
    with mock.patch.dict(os.environ, dict(environment), clear=True):
        return RuntimeSettings()


def port_of(service: str, environment: Mapping[str, str]) -> int:
    """The port ``service`` listens on with this environment (``libs.runtime.host.run``)."""
    return int(environment.get(f"O2C_{service.upper()}_PORT", DEFAULT_PORTS[service]))
