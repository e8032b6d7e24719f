"""Projections: partners' webhooks, the outbox of their pushes and the log of every attempt.

Revision ID: projections_0003_webhooks
Revises: projections_0002_audit
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "projections_0003_webhooks"
down_revision = "projections_0002_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("webhook_id", sa.String(40), primary_key=True),
        sa.Column("partner_id", sa.String(200), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("deleted_at", sa.String(32), nullable=True),
    )
    op.create_index("ix_webhooks_partner_id", "webhooks", ["partner_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(40), nullable=False),
        sa.Column("webhook_id", sa.String(40), nullable=False),
        sa.Column("partner_id", sa.String(200), nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("event_type", sa.String(50), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger, nullable=True),
        sa.Column("queued_at_ms", sa.BigInteger, nullable=False),
        sa.Column("last_attempt_at", sa.String(32), nullable=True),
        sa.Column("last_status_code", sa.Integer, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("delivered_at", sa.String(32), nullable=True),
        sa.UniqueConstraint("delivery_id", name="uq_webhook_deliveries_delivery_id"),
        sa.UniqueConstraint("webhook_id", "event_id", name="webhook_deliveries_once"),
        sqlite_autoincrement=True,
    )
    op.create_index("webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_ms"])
    op.create_index("webhook_deliveries_of_webhook", "webhook_deliveries", ["webhook_id", "seq"])
    op.create_table(
        "webhook_attempts",
        sa.Column("delivery_id", sa.String(40), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("attempted_at", sa.String(32), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("duration_ms", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_index("webhook_deliveries_of_webhook", table_name="webhook_deliveries")
    op.drop_index("webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhooks_partner_id", table_name="webhooks")
    op.drop_table("webhooks")
