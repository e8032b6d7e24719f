"""Tables of the event backbone, shared by every service (each in its own schema or file).

- ``events``: the append-only store and outbox. ``position`` is assigned at
  insert; ``tx_id`` is the writing PostgreSQL transaction (0 on SQLite), which
  lets the relay read in a commit-safe order; ``stream_hash`` chains each
  stream's events.
- ``event_seals``: the global hash chain, written by the single relay as it
  reads events in commit-safe order. With it, ``verify()`` also finds removed
  events and events inserted behind the relay.
- ``relay_state`` / ``relay_offsets``: what the relay sealed and published,
  and the partition offsets it last saw acknowledged (to notice a broker that
  lost its data).
- ``inbox``: event ids a consumer has applied, written in the effect's transaction.
- ``dead_letters``: events a consumer gave up on, until redriven or discarded
  (who resolved it, when and why are kept). The consumer's own table is the
  source of truth for redrive; the dead-letter topic only notifies.
- ``held_events``: events a consumer received ahead of their stream's head,
  held until the versions before them are applied (``parked_at``: the gap did
  not heal within its bound and raised the alarm).
- ``leases``: which relay replica publishes (SQLite; PostgreSQL uses advisory locks).
- ``snapshots``: the latest folded state of a long-lived stream at a version,
  written in the transaction of the events it covers (``libs.store.snapshots``).
  Only a cache: ``fingerprint`` names the state's shape and the event schemas it
  was folded under, and a snapshot whose fingerprint differs is ignored.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("position", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
           autoincrement=True),
    Column("tx_id", BigInteger, nullable=False),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("stream_id", String(200), nullable=False),
    Column("stream_type", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("occurred_at", String(32), nullable=False),
    Column("correlation_id", Uuid, nullable=False),
    Column("causation_id", Uuid, nullable=True),
    Column("actor", String(200), nullable=False),
    Column("data", Text, nullable=False),
    Column("stream_hash", String(64), nullable=False),
    UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
    Index("ix_events_commit_order", "tx_id", "position").ddl_if(dialect="postgresql"),
)

event_seals = Table(
    "event_seals",
    metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
           autoincrement=False),
    Column("position", BigInteger, nullable=False, unique=True),
    Column("stream_hash", String(64), nullable=False),
    Column("chain_hash", String(64), nullable=False),
)

relay_state = Table(
    "relay_state",
    metadata,
    Column("relay", String(100), primary_key=True),
    Column("published_tx", BigInteger, nullable=False),
    Column("published_position", BigInteger, nullable=False),
    Column("sealed_tx", BigInteger, nullable=False),
    Column("sealed_position", BigInteger, nullable=False),
    Column("sealed_seq", BigInteger, nullable=False),
    Column("sealed_hash", String(64), nullable=False),
    Column("republished", Integer, nullable=False),
)

relay_offsets = Table(
    "relay_offsets",
    metadata,
    Column("relay", String(100), primary_key=True),
    Column("topic", String(200), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)

inbox = Table(
    "inbox",
    metadata,
    Column("consumer", String(100), primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("processed_at", String(32), nullable=False),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("consumer", String(100), primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("stream_id", String(200), nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("parked_behind", Uuid, nullable=True),
    Column("status", String(20), nullable=False),
    Column("dead_at", String(32), nullable=False),
    Column("envelope", Text, nullable=False),
    Column("origin_topic", String(200), nullable=True),
    Column("resolved_at", String(32), nullable=True),
    Column("resolved_by", String(200), nullable=True),
    Column("resolution", Text, nullable=True),
    Index("ix_dead_letters_stream", "consumer", "stream_id", "status"),
)

held_events = Table(
    "held_events",
    metadata,
    Column("consumer", String(100), primary_key=True),
    Column("stream_id", String(200), primary_key=True),
    Column("stream_version", Integer, primary_key=True),
    Column("event_id", Uuid, nullable=False),
    Column("origin_topic", String(200), nullable=False),
    Column("held_at", String(32), nullable=False),
    Column("parked_at", String(32), nullable=True),
    Column("envelope", Text, nullable=False),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(100), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("role", String(20), nullable=False),
    Column("partner_id", String(64), nullable=True),
    Column("secret_sha256", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=True),
    Column("revoked", Integer, nullable=False),
    Column("issued_at", String(32), nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", String(64), primary_key=True),
    Column("route", String(200), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_sha256", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
)

documents = Table(
    "documents",
    metadata,
    Column("kind", String(50), primary_key=True),
    Column("id", String(200), primary_key=True),
    Column("partner_id", String(64), nullable=True),
    Column("status", String(50), nullable=True),
    Column("body", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", String(32), nullable=False),
    Column("ref_id", String(200), nullable=True),
    Index("ix_documents_partner", "kind", "partner_id", "id"),
    Index("ix_documents_status", "kind", "status", "id"),
    Index("ix_documents_partner_status", "kind", "partner_id", "status"),
    Index("ix_documents_ref", "kind", "ref_id", "id"),
)

stream_heads = Table(
    "stream_heads",
    metadata,
    Column("consumer", String(100), primary_key=True),
    Column("stream_id", String(200), primary_key=True),
    Column("version", Integer, nullable=False),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("stream_id", String(200), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("state", Text, nullable=False),
    Column("taken_at", String(32), nullable=False),
)
