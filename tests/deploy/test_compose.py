"""docker-compose.yml is a valid Compose file and gives every service the environment it needs.

Validated against the Compose Specification's JSON Schema, vendored in deploy/schemas.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from tests.deploy.support import (
    REQUIRED,
    SERVICES,
    known_variables,
    ops_port_of,
    port_of,
    settings_from,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "deploy" / "schemas" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # resolves the << merge keys
    return loaded


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    assert "draft-07" in schema["$schema"]  # the draft the specification is written in
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _errors(validator: jsonschema.protocols.Validator, document: object) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_the_compose_file_follows_the_compose_specification(
    validator: jsonschema.protocols.Validator, compose: dict[str, Any]
) -> None:
    assert _errors(validator, compose) == []


@pytest.mark.parametrize("breakage", [
    ("orders", "restart", ["unless-stopped"]),              # a list where a string belongs
    ("orders", "depends_on", {"kafka": {"condition": "when-ready"}}),  # no such condition
    ("orders", "helthcheck", {"test": ["CMD", "true"]}),     # a misspelt key
    ("postgres", "ports", "5432:5432"),                      # a string where a list belongs
])
def test_a_broken_compose_file_is_rejected(
    validator: jsonschema.protocols.Validator, compose: dict[str, Any], breakage: tuple[str, str, object]
) -> None:
    service, key, value = breakage
    broken = copy.deepcopy(compose)
    broken["services"][service][key] = value
    assert _errors(validator, broken), f"{service}.{key}={value!r} was accepted"


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "environment as a mapping, please"
    return {name: str(value) for name, value in environment.items()}


def test_every_service_gets_the_environment_it_needs(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(SERVICES) <= set(services)
    for name in SERVICES:
        environment = _environment(services[name])
        missing = [variable for variable in REQUIRED if not environment.get(variable)]
        assert not missing, f"{name} lacks {missing}"
        unknown = {v for v in environment if v.startswith("O2C_")} - known_variables()
        assert not unknown, f"{name} sets variables no service reads: {unknown}"
        assert environment["O2C_HOST"] == "0.0.0.0"
        assert urlsplit("//" + environment["O2C_KAFKA_BOOTSTRAP"]).hostname in services
        assert urlsplit(environment["O2C_DATABASE_URL"]).hostname in services


def test_service_urls_name_every_service_at_its_own_container_and_port(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in SERVICES:
        environment = _environment(services[name])
        urls = settings_from(environment).service_urls
        assert set(urls) == set(SERVICES), f"{name}: O2C_SERVICE_URLS names {sorted(urls)}"
        for target, url in urls.items():
            parts = urlsplit(url)
            assert parts.hostname == target, f"{name} reaches {target} at {url}"
            assert parts.port == port_of(target, _environment(services[target])), url
            # the target's healthcheck probes its internal port
            probe = " ".join(services[target]["healthcheck"]["test"])
            internal = ops_port_of(target, _environment(services[target]))
            assert re.search(rf"127\.0\.0\.1:{internal}/ready", probe), probe


def test_projections_would_not_verify_itself_for_the_others(compose: dict[str, Any]) -> None:
    """The original fault: without O2C_SERVICE_URLS every service is "127.0.0.1", i.e. itself."""
    environment = _environment(compose["services"]["projections"])
    settings = settings_from(environment)
    others = {settings.url_of(name) for name in SERVICES if name != "projections"}
    assert len(others) == len(SERVICES) - 1
    assert not any("127.0.0.1" in url or "localhost" in url for url in others)
