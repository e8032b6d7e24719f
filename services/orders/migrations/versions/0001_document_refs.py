"""Orders: products are listed by category on the indexed ``documents.ref_id``.

Revision ID: orders_0001_document_refs
Revises:
"""

from __future__ import annotations

from alembic import op

from libs.store.migrate import clear_document_refs, fill_document_refs

revision = "orders_0001_document_refs"
down_revision = None
branch_labels = ("orders",)
depends_on = "backbone_0006_document_refs"

FIELDS = {"product": "category"}


def upgrade() -> None:
    fill_document_refs(op.get_bind(), FIELDS)


def downgrade() -> None:
    clear_document_refs(op.get_bind(), list(FIELDS))
