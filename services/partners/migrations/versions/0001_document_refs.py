"""Partners: partners are listed by parent, keys by role, on the indexed ``documents.ref_id``.

Revision ID: partners_0001_document_refs
Revises:
"""

from __future__ import annotations

from alembic import op

from libs.store.migrate import clear_document_refs, fill_document_refs

revision = "partners_0001_document_refs"
down_revision = None
branch_labels = ("partners",)
depends_on = "backbone_0006_document_refs"

FIELDS = {"partner": "parent_id", "api-key": "role"}


def upgrade() -> None:
    fill_document_refs(op.get_bind(), FIELDS)


def downgrade() -> None:
    clear_document_refs(op.get_bind(), list(FIELDS))
