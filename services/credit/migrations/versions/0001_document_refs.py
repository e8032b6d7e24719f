"""Credit: invoices, credit notes and debit notes carry their source on the indexed ``documents.ref_id``.

The account keeps only what is live (``services.credit.domain.account``); whether a
dispatch was invoiced or a source credited or debited is then looked up on the index
(``read_models.invoiced``, ``credited``, ``debited``). Documents written before this
revision are filled from their bodies.

Revision ID: credit_0001_document_refs
Revises:
"""

from __future__ import annotations

from alembic import op

from libs.store.migrate import clear_document_refs, fill_document_refs

revision = "credit_0001_document_refs"
down_revision = None
branch_labels = ("credit",)
depends_on = "backbone_0006_document_refs"

FIELDS = {"invoice": "dispatch_id", "credit-note": "source_ref", "debit-note": "source_ref"}
"""The body field each kind's ``ref_id`` holds (``read_models.project`` writes it since)."""


def upgrade() -> None:
    fill_document_refs(op.get_bind(), FIELDS)


def downgrade() -> None:
    clear_document_refs(op.get_bind(), list(FIELDS))
