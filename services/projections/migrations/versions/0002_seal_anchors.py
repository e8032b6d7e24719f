"""Projections: the seal anchors, the newest seal of each publisher seen by a verification.

Revision ID: projections_0002_audit
Revises: projections_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "projections_0002_audit"
down_revision = "projections_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seal_anchors",
        sa.Column("service", sa.String(50), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("chain_hash", sa.String(64), nullable=False),
        sa.Column("anchored_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("seal_anchors")
