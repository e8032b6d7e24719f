"""Documents gain ``ref_id``: the other id a list filters a kind by, behind an index.

Lists filter by partner and status on indexed columns already; a shipment's or a
return's order, an accrual's or a settlement's program and a partner's parent were
filtered in Python after loading every document of the kind. Each service's own
migration fills ``ref_id`` for the documents it already holds.

Revision ID: backbone_0006_document_refs
Revises: backbone_0005_snapshots
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "backbone_0006_document_refs"
down_revision = "backbone_0005_snapshots"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("ref_id", sa.String(200), nullable=True))
    op.create_index("ix_documents_ref", "documents", ["kind", "ref_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_documents_ref", table_name="documents")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("ref_id")
