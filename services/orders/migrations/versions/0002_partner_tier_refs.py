"""Orders: a partner copy's ``documents.ref_id`` is its tier, so a placement reads the
tier's price list in the same statement as the partner copy and the products.

Revision ID: orders_0002_partner_tier_refs
Revises: orders_0001_document_refs
"""

from __future__ import annotations

from alembic import op

from libs.store.migrate import clear_document_refs, fill_document_refs

revision = "orders_0002_partner_tier_refs"
down_revision = "orders_0001_document_refs"
branch_labels = None
depends_on = None

FIELDS = {"partner-copy": "tier"}


def upgrade() -> None:
    fill_document_refs(op.get_bind(), FIELDS)


def downgrade() -> None:
    clear_document_refs(op.get_bind(), list(FIELDS))
