"""Projections: the archive of every event the service consumed, from every publisher.

Each row keeps the envelope exactly as published (header, canonical payload and
stream hash), so timelines and audits read it back and the per-stream hash
chain can be recomputed from the archive alone.

Revision ID: projections_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "projections_0001"
down_revision = None
branch_labels = ("projections",)
depends_on = "backbone_0002"


def upgrade() -> None:
    op.create_table(
        "archive",
        sa.Column("received_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("service", sa.String(50), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=True),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("stream_id", sa.String(200), nullable=False),
        sa.Column("stream_type", sa.String(100), nullable=False),
        sa.Column("stream_version", sa.Integer, nullable=False),
        sa.Column("occurred_at", sa.String(32), nullable=False),
        sa.Column("correlation_id", sa.Uuid, nullable=False),
        sa.Column("causation_id", sa.Uuid, nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("stream_hash", sa.String(64), nullable=True),
        sa.Column("order_id", sa.String(200), nullable=True),
        sa.Column("partner_id", sa.String(200), nullable=True),
        sa.Column("invoice_id", sa.String(200), nullable=True),
        sa.UniqueConstraint("event_id", name="uq_archive_event_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_archive_correlation", "archive", ["correlation_id"])
    op.create_index("ix_archive_order", "archive", ["order_id"])
    op.create_index("ix_archive_partner", "archive", ["partner_id"])
    op.create_index("ix_archive_invoice", "archive", ["invoice_id"])
    op.create_index("ix_archive_stream", "archive", ["service", "stream_id", "stream_version"])


def downgrade() -> None:
    op.drop_index("ix_archive_stream", table_name="archive")
    op.drop_index("ix_archive_invoice", table_name="archive")
    op.drop_index("ix_archive_partner", table_name="archive")
    op.drop_index("ix_archive_order", table_name="archive")
    op.drop_index("ix_archive_correlation", table_name="archive")
    op.drop_table("archive")
