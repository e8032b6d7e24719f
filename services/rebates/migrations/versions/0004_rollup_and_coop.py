"""Rebates: a counted source may be a sub-dealer's document (roll-up to its parent).

``rebate_sources.source_partner_id`` names the sub-dealer whose invoice,
payment or return counted toward its parent's rebate; null for the rebate's
own documents (all rows written before this revision).

Revision ID: rebates_0004_rollup
Revises: rebates_0003_invoice_timeliness
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rebates_0004_rollup"
down_revision = "rebates_0003_invoice_timeliness"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rebate_sources") as batch:
        batch.add_column(sa.Column("source_partner_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rebate_sources") as batch:
        batch.drop_column("source_partner_id")
