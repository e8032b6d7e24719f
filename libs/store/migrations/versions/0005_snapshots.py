"""Snapshots of long-lived streams, and documents found by partner and status.

- ``snapshots``: one row per stream, the latest folded state at a version, so
  loading an aggregate reads that row and only the events after it. Derived
  data: dropping the table's rows changes no answer.
- ``ix_documents_partner_status``: a partner's documents of one kind and status
  (credit's cancelled order copies) without reading all of the partner's documents.

Revision ID: backbone_0005_snapshots
Revises: backbone_0004_consumer
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "backbone_0005_snapshots"
down_revision = "backbone_0004_consumer"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "snapshots",
        sa.Column("stream_id", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("taken_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_documents_partner_status", "documents", ["kind", "partner_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_documents_partner_status", table_name="documents")
    op.drop_table("snapshots")
