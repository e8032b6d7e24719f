"""Consumers remember, per stream, the last version they passed (order guard).

Ships with the consumers that use it, so no database predates it. Upgrading a
consumer database that already applied events would need its heads backfilled
(the inbox holds event ids, not versions): until then every such stream would
read as "starts at v1" and its next event as a gap.

Revision ID: backbone_0003
Revises: backbone_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "backbone_0003"
down_revision = "backbone_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_heads",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("stream_id", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stream_heads")
