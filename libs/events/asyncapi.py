"""The published event contract: an AsyncAPI 3 document built from ``libs.events``, and the
compatibility rule every change to an event class must keep.

Channels are the topics (one per publishing service), messages are the event types. A
message on the wire is the envelope (:meth:`Envelope.to_wire`): identity, causality and the
payload nested under ``data``; its Kafka key is the stream id, and its headers carry the
event type and CloudEvents attributes (``ce_*``). The payload schemas are the pydantic JSON
Schemas of the event classes.

Compatibility, checked against ``libs/events/published.json`` (every schema version ever
published, append-only): within one ``schema_version`` a payload may only gain optional
fields, and an enumeration may only gain values. Removing a field, changing its type or
adding a required one needs a new ``VERSION`` on the class and an upcaster from the
previous one (``libs.events.registry``). Consumers ignore fields they do not know.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from libs.events import CONTRACT_MODULES
from libs.events.base import DomainEvent
from libs.events.topics import TOPICS

ASYNCAPI_VERSION = "3.0.0"

DESCRIPTION = (
    "Events published by the o2c services on Kafka: one topic per publishing service, each "
    "message keyed by its stream id, so a stream's events arrive in order on one partition. "
    "Delivery is at least once: deduplicate by `event_id`. Within one `schema_version` an event "
    "only gains optional fields and enumerations only gain values; anything else comes with a new "
    "`schema_version`. Consumers must ignore fields they do not know."
)

HEADERS: dict[str, Any] = {
    "type": "object",
    "required": ["event_type", "event_id", "ce_specversion", "ce_id", "ce_type", "ce_source",
                 "ce_time", "content-type"],
    "properties": {
        "event_type": {"type": "string", "description": "The event type (as ce_type)."},
        "stream_version": {"type": "string", "pattern": "^[1-9][0-9]*$",
                           "description": "The envelope's stream_version, in decimal: with the key "
                                          "(the stream id), what orders a message without parsing it."},
        "event_id": {"type": "string", "format": "uuid", "description": "The event id (as ce_id)."},
        "ce_specversion": {"const": "1.0"},
        "ce_id": {"type": "string", "format": "uuid"},
        "ce_type": {"type": "string"},
        "ce_source": {"type": "string", "description": "/o2c/<publishing service>"},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string", "description": "The stream id (also the message key)."},
        "content-type": {"const": "application/json"},
        "traceparent": {"type": "string", "description": "W3C trace context, when tracing is on."},
    },
}


def envelope_schema(payload_ref: str) -> dict[str, Any]:
    """The JSON Schema of a message on the wire around the payload at ``payload_ref``."""
    return {
        "type": "object",
        "required": ["event_id", "event_type", "schema_version", "stream_id", "stream_type",
                     "stream_version", "occurred_at", "correlation_id", "actor", "data"],
        "properties": {
            "event_id": {"type": "string", "format": "uuid"},
            "event_type": {"type": "string"},
            "schema_version": {"type": "integer", "minimum": 1},
            "stream_id": {"type": "string"},
            "stream_type": {"type": "string"},
            "stream_version": {"type": "integer", "minimum": 1,
                               "description": "Position in the stream; consumers apply in this order."},
            "occurred_at": {"type": "string", "description": "RFC 3339 UTC with microseconds."},
            "correlation_id": {"type": "string", "format": "uuid"},
            "causation_id": {"type": ["string", "null"], "format": "uuid"},
            "actor": {"type": "string"},
            "position": {"type": ["integer", "null"]},
            "stream_hash": {"type": ["string", "null"],
                            "description": "The stream's keyed hash-chain link (see the audit guide)."},
            "data": {"$ref": payload_ref},
        },
    }


def payload_schema(cls: type[DomainEvent]) -> dict[str, Any]:
    """The payload's JSON Schema as it appears on the wire (serialisation mode)."""
    return cls.model_json_schema(mode="serialization", ref_template="#/$defs/{model}")


def release() -> str | None:
    """The installed o2c version (None when run from a checkout that was never installed)."""
    try:
        return metadata.version("o2c")
    except metadata.PackageNotFoundError:
        return None


def document(modules: tuple[Any, ...] = CONTRACT_MODULES, version: str | None = None) -> dict[str, Any]:
    """The AsyncAPI 3 document of every event in ``modules`` (default: every published event),
    titled with ``version`` (default: the installed release)."""
    version = version or release() or "0.0.0"
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for module in modules:
        publisher = module.__name__.rsplit(".", 1)[-1]
        topic = TOPICS[publisher]
        channel_messages: dict[str, Any] = {}
        for cls in module.EVENTS:
            payload = payload_schema(cls)
            for name, definition in payload.pop("$defs", {}).items():
                schemas.setdefault(name, definition)
            schemas[f"{cls.TYPE}Payload"] = _rebase(payload)
            schemas[cls.TYPE] = envelope_schema(f"#/components/schemas/{cls.TYPE}Payload")
            messages[cls.TYPE] = {
                "name": cls.TYPE,
                "title": cls.TYPE,
                "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
                "contentType": "application/json",
                "headers": {"$ref": "#/components/schemas/Headers"},
                "payload": {"$ref": f"#/components/schemas/{cls.TYPE}"},
                "correlationId": {"location": "$message.payload#/correlation_id"},
                "bindings": {"kafka": {"key": {"type": "string", "description": "the stream id"},
                                       "bindingVersion": "0.5.0"}},
                "x-schema-version": cls.VERSION,
            }
            channel_messages[cls.TYPE] = {"$ref": f"#/components/messages/{cls.TYPE}"}
        channels[publisher] = {
            "address": topic,
            "description": f"Every event the {publisher} service publishes, keyed by stream id, "
                           f"in stream order per key.",
            "messages": channel_messages,
        }
        operations[f"{publisher}Publishes"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{publisher}"},
            "messages": [{"$ref": f"#/channels/{publisher}/messages/{name}"} for name in channel_messages],
        }
    schemas["Headers"] = HEADERS
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "o2c domain events",
            "version": version,
            "description": DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _rebase(schema: Any) -> Any:
    """Point pydantic's local ``#/$defs/X`` references at the document's components."""
    if isinstance(schema, dict):
        return {key: ("#/components/schemas/" + value.removeprefix("#/$defs/")
                      if key == "$ref" and isinstance(value, str) else _rebase(value))
                for key, value in schema.items()}
    if isinstance(schema, list):
        return [_rebase(item) for item in schema]
    return schema


# -- compatibility ---------------------------------------------------------------------------


def resolved(cls: type[DomainEvent]) -> dict[str, Any]:
    """``cls``'s payload schema with every reference inlined and descriptions dropped: the shape
    a consumer depends on, in one comparable value."""
    schema = payload_schema(cls)
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()
                    if key not in {"description", "title", "examples"}}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return inline(schema)


def incompatibilities(published: Any, current: Any, where: str = "") -> list[str]:
    """Why a consumer of ``published`` could not read ``current`` (empty: it can)."""
    if isinstance(published, dict) and isinstance(current, dict):
        problems: list[str] = []
        published, current = _as_enum(published), _as_enum(current)
        if "enum" in published and "enum" in current:
            lost = [v for v in published["enum"] if v not in current["enum"]]
            if lost:
                problems.append(f"{where or '/'}: values removed: {lost}")
            published = {k: v for k, v in published.items() if k != "enum"}
            current = {k: v for k, v in current.items() if k != "enum"}
        new_required = set(current.get("required", [])) - set(published.get("required", []))
        if new_required:
            problems.append(f"{where or '/'}: newly required: {sorted(new_required)}")
        old_props, new_props = published.get("properties", {}), current.get("properties", {})
        for name, schema in old_props.items():
            if name not in new_props:
                problems.append(f"{where}/{name}: removed")
            else:
                problems.extend(incompatibilities(schema, new_props[name], f"{where}/{name}"))
        for key in (set(published) | set(current)) - {"properties", "required", "default"}:
            if key in {"anyOf", "items", "additionalProperties", "allOf", "oneOf"}:
                problems.extend(_nested(published.get(key), current.get(key), f"{where}/{key}"))
            elif published.get(key) != current.get(key):
                problems.append(f"{where or '/'}: {key} {published.get(key)!r} -> {current.get(key)!r}")
        return problems
    if published != current:
        return [f"{where or '/'}: {published!r} -> {current!r}"]
    return []


def _as_enum(schema: dict[str, Any]) -> dict[str, Any]:
    """A one-value ``const`` is an enumeration of one (a Literal that gains a value becomes an enum)."""
    if "const" not in schema:
        return schema
    return {**{k: v for k, v in schema.items() if k != "const"}, "enum": [schema["const"]]}


def _nested(published: Any, current: Any, where: str) -> list[str]:
    if isinstance(published, list) and isinstance(current, list) and len(published) == len(current):
        return [p for i, (a, b) in enumerate(zip(published, current, strict=True))
                for p in incompatibilities(a, b, f"{where}/{i}")]
    return incompatibilities(published, current, where)
