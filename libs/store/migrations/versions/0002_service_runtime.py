"""Service runtime: local copies of API keys, idempotency records, read-model documents.

Revision ID: backbone_0002
Revises: backbone_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "backbone_0002"
down_revision = "backbone_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("partner_id", sa.String(64), nullable=True),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("revoked", sa.Integer, nullable=False),
        sa.Column("issued_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("secret_sha256", name="uq_api_keys_secret"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(64), primary_key=True),
        sa.Column("route", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "documents",
        sa.Column("kind", sa.String(50), primary_key=True),
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("partner_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(50), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_documents_partner", "documents", ["kind", "partner_id", "id"])
    op.create_index("ix_documents_status", "documents", ["kind", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_documents_status", table_name="documents")
    op.drop_index("ix_documents_partner", table_name="documents")
    op.drop_table("documents")
    op.drop_table("idempotency_keys")
    op.drop_table("api_keys")
