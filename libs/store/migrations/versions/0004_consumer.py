"""Consumers hold early events durably, and dead letters record how they were resolved.

- ``held_events``: events that arrived ahead of their stream's head (an earlier
  version not applied yet, or an unresolved dead letter before them). They are
  written in the transaction that decides to hold them, before the offset is
  committed, and applied in order when the stream catches up.
- ``dead_letters`` gains the origin topic and who resolved a dead letter, when,
  and why (a discard names its reason).

Revision ID: backbone_0004_consumer
Revises: backbone_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "backbone_0004_consumer"
down_revision = "backbone_0003"
branch_labels = None
depends_on = None

RESOLUTION_COLUMNS = ("origin_topic", "resolved_at", "resolved_by", "resolution")


def upgrade() -> None:
    op.create_table(
        "held_events",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("stream_id", sa.String(200), primary_key=True),
        sa.Column("stream_version", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("origin_topic", sa.String(200), nullable=False),
        sa.Column("held_at", sa.String(32), nullable=False),
        sa.Column("parked_at", sa.String(32), nullable=True),
        sa.Column("envelope", sa.Text, nullable=False),
    )
    with op.batch_alter_table("dead_letters") as batch:
        batch.add_column(sa.Column("origin_topic", sa.String(200), nullable=True))
        batch.add_column(sa.Column("resolved_at", sa.String(32), nullable=True))
        batch.add_column(sa.Column("resolved_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("resolution", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        for column in reversed(RESOLUTION_COLUMNS):
            batch.drop_column(column)
    op.drop_table("held_events")
