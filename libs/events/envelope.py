"""The envelope: an event's identity and causality around its payload.

The same envelope is what the store returns and what travels on Kafka. Its
``data`` is the payload's canonical JSON text, so the bytes that were hashed
at append time are the bytes every reader sees.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from libs.events.base import parse_timestamp
from libs.events.chain import UNKEYED, Chain
from libs.events.codec import canonical_json, parse_json

GENESIS_HASH = "0" * 64
"""The hash a stream's first event chains from."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """A stored (or published) event.

    ``position`` is the global position the store assigned at insert: unique and
    increasing per stream, but on PostgreSQL not necessarily in commit order
    (readers that must not skip use the store's commit-safe checkpoints).
    ``stream_hash`` chains this event to the previous one of its stream.
    """

    event_id: uuid.UUID
    event_type: str
    schema_version: int
    stream_id: str
    stream_type: str
    stream_version: int
    occurred_at: str
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None
    actor: str
    data: str
    position: int | None = None
    stream_hash: str | None = None

    @property
    def occurred(self) -> datetime:
        return parse_timestamp(self.occurred_at)

    def payload(self) -> dict[str, Any]:
        return parse_json(self.data)

    def header(self) -> dict[str, Any]:
        """The identity fields that the hash covers (everything but position and hashes)."""
        return {
            "event_id": str(self.event_id),
            "event_type": self.event_type,
            "schema_version": self.schema_version,
            "stream_id": self.stream_id,
            "stream_type": self.stream_type,
            "stream_version": self.stream_version,
            "occurred_at": self.occurred_at,
            "correlation_id": str(self.correlation_id),
            "causation_id": str(self.causation_id) if self.causation_id else None,
            "actor": self.actor,
        }

    def chain_parts(self, previous_hash: str) -> tuple[bytes, ...]:
        """What a stream link covers: the previous link, the canonical header and payload."""
        return (previous_hash.encode("utf-8"), b"|", canonical_json(self.header()), b"|",
                self.data.encode("utf-8"))

    def chained_hash(self, previous_hash: str, chain: Chain = UNKEYED) -> str:
        """This event's link onto ``previous_hash`` (default: the unkeyed sha256 formula)."""
        return chain.sign(self.chain_parts(previous_hash))

    def to_wire(self) -> bytes:
        """Canonical JSON of the whole envelope, payload nested as an object."""
        body = self.header()
        body["position"] = self.position
        body["stream_hash"] = self.stream_hash
        body["data"] = orjson.Fragment(self.data.encode("utf-8"))
        return canonical_json(body)

    @classmethod
    def from_wire(cls, raw: bytes) -> Envelope:
        body = parse_json(raw)
        causation = body.get("causation_id")
        return cls(
            event_id=uuid.UUID(body["event_id"]),
            event_type=body["event_type"],
            schema_version=int(body["schema_version"]),
            stream_id=body["stream_id"],
            stream_type=body["stream_type"],
            stream_version=int(body["stream_version"]),
            occurred_at=body["occurred_at"],
            correlation_id=uuid.UUID(body["correlation_id"]),
            causation_id=uuid.UUID(causation) if causation else None,
            actor=body["actor"],
            data=canonical_json(body["data"]).decode("utf-8"),
            position=body.get("position"),
            stream_hash=body.get("stream_hash"),
        )
