"""What every o2c service process needs in its environment, and which variables exist at all."""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import import_module
from unittest import mock

from pydantic_settings import BaseSettings

from libs.runtime.settings import DEFAULT_OPS_PORTS, DEFAULT_PORTS, RuntimeSettings

SERVICES = tuple(DEFAULT_PORTS)

REQUIRED = ("O2C_DATABASE_URL", "O2C_KAFKA_BOOTSTRAP", "O2C_ADMIN_TOKEN", "O2C_AUDIT_KEYS",
            "O2C_HOST", "O2C_SERVICE_URLS")
"""Set for every service on real infrastructure: PostgreSQL, Kafka, the bootstrap admin, the
keyed chains, listening beyond the pod or container, and how to reach the other services."""


def _settings_classes() -> list[type[BaseSettings]]:
    """Every settings class of o2c that the six services import."""
    for service in SERVICES:
        import_module(f"services.{service}.app")
    found: list[type[BaseSettings]] = []
    todo = list(BaseSettings.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith(("libs.", "services.")):
            found.append(cls)
    return found


def known_variables() -> set[str]:
    """Every ``O2C_`` variable a service reads: the settings classes' fields and the ports
    (public and internal)."""
    names = {f"O2C_{service.upper()}_{port}" for service in SERVICES for port in ("PORT", "OPS_PORT")}
    for cls in _settings_classes():
        prefix = cls.model_config.get("env_prefix", "")
        for field, info in cls.model_fields.items():
            alias = info.validation_alias if isinstance(info.validation_alias, str) else None
            names.add((alias or f"{prefix}{field}").upper())
    assert {"O2C_DATABASE_URL", "O2C_PARTNERS_TRIAL_CHECK_SECONDS"} <= names  # both kinds found
    return names


def settings_from(environment: Mapping[str, str]) -> RuntimeSettings:
    """The settings a service builds from ``environment`` (parsed exactly as at start)."""
    with mock.patch.dict(os.environ, dict(environment), clear=True):
        return RuntimeSettings()


def port_of(service: str, environment: Mapping[str, str]) -> int:
    """The port ``service`` listens on with this environment (``libs.runtime.host.run``)."""
    return int(environment.get(f"O2C_{service.upper()}_PORT", DEFAULT_PORTS[service]))


def ops_port_of(service: str, environment: Mapping[str, str]) -> int:
    """The internal port (``/health``, ``/ready``, ``/metrics``: ``libs.runtime.host.serve``)."""
    return int(environment.get(f"O2C_{service.upper()}_OPS_PORT", DEFAULT_OPS_PORTS[service]))
