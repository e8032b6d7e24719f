"""Rebates: invoice copies carry an indexed timeliness key, so a timeliness bonus counts without reading them.

The accrual includes the timeliness bonus, which looks at how many of the
partner's invoices issued in a window were paid on time. Each ``invoice-copy``
document's ``status`` becomes ``<issued_on>:<1 if paid on time else 0>``
(``services.rebates.application.copies.timeliness_key``), counted on the index
``ix_documents_partner_status``; its ``ref_id`` is its order (for returns).
Copies written before this revision are backfilled from their bodies.

Revision ID: rebates_0003_invoice_timeliness
Revises: rebates_0002_sources
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "rebates_0003_invoice_timeliness"
down_revision = "rebates_0002_sources"
branch_labels = None
depends_on = None

DOCUMENTS = sa.table("documents", sa.column("kind"), sa.column("id"), sa.column("body"),
                     sa.column("status"), sa.column("ref_id"))


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(DOCUMENTS.c.id, DOCUMENTS.c.body).where(
        DOCUMENTS.c.kind == "invoice-copy")).all()
    for doc_id, text in rows:
        body = json.loads(text)
        if not body.get("issued_on"):
            continue
        key = f"{body['issued_on']}:{1 if body.get('on_time') else 0}"
        bind.execute(DOCUMENTS.update().where(DOCUMENTS.c.kind == "invoice-copy", DOCUMENTS.c.id == doc_id)
                     .values(status=key, ref_id=body.get("order_id")))


def downgrade() -> None:
    op.get_bind().execute(DOCUMENTS.update().where(DOCUMENTS.c.kind == "invoice-copy")
                          .values(status=None, ref_id=None))
