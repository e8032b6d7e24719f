"""Event backbone: store, seals, relay state, inbox, dead letters, leases.

Revision ID: backbone_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "backbone_0001"
down_revision = None
branch_labels = ("backbone",)
depends_on = None


def _big_pk() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    tx_default = "(pg_current_xact_id()::text)::bigint" if postgres else "0"
    op.create_table(
        "events",
        sa.Column("position", _big_pk(), primary_key=True, autoincrement=True),
        sa.Column("tx_id", sa.BigInteger, nullable=False, server_default=sa.text(tx_default)),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("stream_id", sa.String(200), nullable=False),
        sa.Column("stream_type", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("occurred_at", sa.String(32), nullable=False),
        sa.Column("correlation_id", sa.Uuid, nullable=False),
        sa.Column("causation_id", sa.Uuid, nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("stream_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_events_event_id"),
        sa.UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
        sqlite_autoincrement=True,  # positions are never reused, even after a delete
    )
    if postgres:  # on SQLite tx_id is always 0: position order is commit order
        op.create_index("ix_events_commit_order", "events", ["tx_id", "position"])
    op.create_table(
        "event_seals",
        sa.Column("seq", _big_pk(), primary_key=True, autoincrement=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("stream_hash", sa.String(64), nullable=False),
        sa.Column("chain_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("position", name="uq_event_seals_position"),
    )
    op.create_table(
        "relay_state",
        sa.Column("relay", sa.String(100), primary_key=True),
        sa.Column("published_tx", sa.BigInteger, nullable=False),
        sa.Column("published_position", sa.BigInteger, nullable=False),
        sa.Column("sealed_tx", sa.BigInteger, nullable=False),
        sa.Column("sealed_position", sa.BigInteger, nullable=False),
        sa.Column("sealed_seq", sa.BigInteger, nullable=False),
        sa.Column("sealed_hash", sa.String(64), nullable=False),
        sa.Column("republished", sa.Integer, nullable=False),
    )
    op.create_table(
        "relay_offsets",
        sa.Column("relay", sa.String(100), primary_key=True),
        sa.Column("topic", sa.String(200), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("processed_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("stream_id", sa.String(200), nullable=False),
        sa.Column("stream_version", sa.Integer, nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("parked_behind", sa.Uuid, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("dead_at", sa.String(32), nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
    )
    op.create_index("ix_dead_letters_stream", "dead_letters", ["consumer", "stream_id", "status"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_index("ix_dead_letters_stream", table_name="dead_letters")
    op.drop_table("dead_letters")
    op.drop_table("inbox")
    op.drop_table("relay_offsets")
    op.drop_table("relay_state")
    op.drop_table("event_seals")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_events_commit_order", table_name="events")
    op.drop_table("events")
