"""The published event contract: what other teams read (``docs/asyncapi.json``), the rule that
keeps it compatible (``libs/events/published.json``), tolerant reading, and a consumer that
knows nothing of o2c but the document."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson
import pytest
from pydantic import ValidationError

from libs.events import CONTRACT_MODULES, DomainEvent, Envelope, default_registry
from libs.events.asyncapi import document, incompatibilities, resolved
from libs.events.base import EventMetadata, format_timestamp, utc_now
from libs.events.codec import canonical_json
from libs.events.orders import OrderPlaced
from libs.events.partners import PartnerRegistered
from libs.events.values import ValueObject
from libs.messaging.kafka import ensure_topics
from libs.messaging.relay import Relay, RelaySettings
from libs.runtime.http import create_app
from libs.store.database import Database
from libs.store.store import EventStore
from tests.libs.test_event_contracts import sample_of

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = orjson.loads((ROOT / "libs" / "events" / "published.json").read_bytes())
CURRENT = {cls.TYPE: cls for module in CONTRACT_MODULES for cls in module.EVENTS}


# -- the compatibility rule ----------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(PUBLISHED))
def test_every_published_version_is_still_readable(key: str) -> None:
    """Same version: the class may only have gained optional fields or enum values.
    An older version: an upcaster chain brings it to the current class."""
    event_type, version = key.rsplit("@v", 1)
    cls = CURRENT.get(event_type)
    assert cls is not None, f"{event_type} was published and may not disappear"
    if int(version) == cls.VERSION:
        assert incompatibilities(PUBLISHED[key], resolved(cls)) == []
    else:
        for step in range(int(version), cls.VERSION):
            assert default_registry().has_upcaster(event_type, step), f"no upcaster {event_type} v{step}"


def test_every_current_version_is_published() -> None:
    missing = [f"{t}@v{c.VERSION}" for t, c in CURRENT.items() if f"{t}@v{c.VERSION}" not in PUBLISHED]
    assert missing == [], "run .venv/bin/python docs/event_catalogue.py"


class _Before(DomainEvent):
    TYPE = "test.Shape"
    order_id: str
    qty: int
    kind: Literal["a", "b"]


def _changed(**fields: Any) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__annotations__": {}, "TYPE": "test.Shape"}
    annotations = {"order_id": str, "qty": int, "kind": Literal["a", "b"]}
    annotations.update({k: v for k, v in fields.items() if v is not None})
    for name in [k for k, v in fields.items() if v is None]:
        annotations.pop(name)
    for name, hint in annotations.items():
        namespace["__annotations__"][name] = hint
        if name == "note":
            namespace[name] = None
    return resolved(type("_After", (DomainEvent,), namespace))


def test_the_rule_accepts_an_optional_field_and_a_new_enum_value() -> None:
    before = resolved(_Before)
    assert incompatibilities(before, _changed(note=str | None)) == []
    assert incompatibilities(before, _changed(kind=Literal["a", "b", "c"])) == []


@pytest.mark.parametrize(("change", "says"), [
    ({"qty": None}, "/qty: removed"),
    ({"qty": str}, "/qty: type"),
    ({"due_on": str}, "newly required"),
    ({"kind": Literal["a"]}, "values removed"),
])
def test_the_rule_refuses_what_breaks_a_reader(change: dict[str, Any], says: str) -> None:
    problems = incompatibilities(resolved(_Before), _changed(**change))
    assert any(says in problem for problem in problems), problems


# -- tolerant reading, strict writing ----------------------------------------------------


def _envelope(event: DomainEvent, payload: dict[str, Any]) -> Envelope:
    return Envelope(event_id=uuid.uuid4(), event_type=event.TYPE, schema_version=event.VERSION,
                    stream_id="s-1", stream_type="test", stream_version=1,
                    occurred_at=format_timestamp(utc_now()), correlation_id=uuid.uuid4(),
                    causation_id=None, actor="test", data=canonical_json(payload).decode())


def test_a_reader_ignores_fields_added_by_a_newer_publisher() -> None:
    placed = sample_of(OrderPlaced)
    payload = placed.payload()
    payload["channel_note"] = "added by a newer orders service"
    payload["lines"][0]["discount_minor"] = 5
    assert default_registry().decode(_envelope(placed, payload)) == placed
    with pytest.raises(ValidationError):  # writing (code, HTTP input) stays strict
        OrderPlaced.model_validate(payload)


def test_value_objects_stay_strict_where_they_are_written() -> None:
    for cls in ValueObject.__subclasses__():
        sample = sample_of(cls).model_dump(mode="json")
        with pytest.raises(ValidationError, match="extra_forbidden"):
            cls.model_validate({**sample, "surprise": 1})


# -- the document ------------------------------------------------------------------------


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [*([node["$ref"]] if "$ref" in node else []), *(r for v in node.values() for r in _refs(v))]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def test_the_document_names_every_event_on_its_topic_and_every_reference_resolves() -> None:
    doc = document(CONTRACT_MODULES, "test")
    assert doc["asyncapi"] == "3.0.0"
    assert set(doc["components"]["messages"]) == set(CURRENT)
    for module in CONTRACT_MODULES:
        publisher = module.__name__.rsplit(".", 1)[-1]
        assert doc["channels"][publisher]["address"] == f"o2c.{publisher}.events"
        assert set(doc["channels"][publisher]["messages"]) == {cls.TYPE for cls in module.EVENTS}
    for ref in _refs(doc):
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert node, ref


async def test_every_service_serves_the_document_without_a_key() -> None:
    app = create_app(title="t", routers=[])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/asyncapi.json")
    assert response.status_code == 200
    assert response.json() == orjson.loads((ROOT / "docs" / "asyncapi.json").read_bytes()) | {
        "info": response.json()["info"]}


# -- a consumer that knows only the document ----------------------------------------------

EXAMPLE = ROOT / "examples" / "event_consumer.py"


def test_the_example_consumer_imports_nothing_from_o2c() -> None:
    tree = ast.parse(EXAMPLE.read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] in {"libs", "services", "o2c", "tests"}}


async def test_the_example_consumer_reads_real_relayed_events(db: Database, broker_bootstrap: str) -> None:
    topic = f"test.contract.{uuid.uuid4().hex[:10]}"
    await ensure_topics(broker_bootstrap, [topic], partitions=3)
    store = EventStore(db)
    registered = [sample_of(PartnerRegistered).model_copy(update={"partner_id": f"p-{n}"}) for n in range(3)]
    for event in registered:
        await store.append(event.partner_id, "partner", 0, [event], EventMetadata(actor="test"))
    relay = Relay(store, topic=topic, kafka=broker_bootstrap, name="partners",
                  settings=RelaySettings(poll_interval=0.02))
    async def publish_all() -> None:
        while relay.published_total < len(registered):
            await relay.publish_batch() or await asyncio.sleep(0.05)

    await asyncio.wait_for(publish_all(), timeout=60)
    await relay.stop()

    done = await asyncio.to_thread(subprocess.run, [
        sys.executable, str(EXAMPLE), "--bootstrap", broker_bootstrap, "--topic", topic,
        "--asyncapi", str(ROOT / "docs" / "asyncapi.json"), "--max-messages", "3",
        "--idle-timeout", "60"],
        capture_output=True, text=True, timeout=120, check=False, cwd="/")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert sorted(line["stream_id"] for line in lines) == ["p-0", "p-1", "p-2"]
    assert {(line["event_type"], line["source"], line["schema_version"]) for line in lines} == {
        ("PartnerRegistered", "/o2c/partners", 1)}
    assert {line["data"]["partner_id"] for line in lines} == {"p-0", "p-1", "p-2"}
