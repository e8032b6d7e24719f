"""Rebates: accrual sources in rows of their own, and programs indexed by whom and when they apply.

``rebate_sources`` holds one row per source a rebate counted, numbered in
accrual order per (program, partner); the unique key (program, partner, kind,
ref) is the "already counted" lookup. ``rebate_programs`` and
``rebate_program_scope`` let a reaction find the programs that apply to a
partner, currency and dates by index (``*``: no restriction on that axis).
Rows are backfilled from the documents written before this revision.

Revision ID: rebates_0002_sources
Revises: rebates_0001_document_refs
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "rebates_0002_sources"
down_revision = "rebates_0001_document_refs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sources = op.create_table(
        "rebate_sources",
        sa.Column("program_id", sa.String(64), primary_key=True),
        sa.Column("partner_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("ref", sa.String(200), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("program_id", "partner_id", "kind", "ref", name="uq_rebate_sources_ref"),
    )
    op.create_index("ix_rebate_sources_partner", "rebate_sources", ["partner_id", "program_id"])
    programs = op.create_table(
        "rebate_programs",
        sa.Column("program_id", sa.String(64), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("starts_on", sa.String(10), nullable=False),
        sa.Column("ends_on", sa.String(10), nullable=False),
    )
    op.create_index("ix_rebate_programs_period", "rebate_programs", ["currency", "starts_on", "ends_on"])
    scope = op.create_table(
        "rebate_program_scope",
        sa.Column("program_id", sa.String(64), primary_key=True),
        sa.Column("axis", sa.String(10), primary_key=True),
        sa.Column("value", sa.String(64), primary_key=True),
    )
    op.create_index("ix_rebate_program_scope_value", "rebate_program_scope", ["axis", "value", "program_id"])
    _backfill(sources, programs, scope)


def _backfill(sources: sa.Table, programs: sa.Table, scope: sa.Table) -> None:
    bind = op.get_bind()
    documents = sa.table("documents", sa.column("kind"), sa.column("body"))
    rows = bind.execute(sa.select(documents.c.kind, documents.c.body).where(
        documents.c.kind.in_(("accrual", "program")))).all()
    for kind, text in rows:
        body = json.loads(text)
        if kind == "accrual":
            for seq, source in enumerate(body.get("sources", []), start=1):
                bind.execute(sources.insert().values(
                    program_id=body["program_id"], partner_id=body["partner_id"], seq=seq,
                    kind=source["kind"], ref=source["ref"], amount_minor=source["amount_minor"]))
            continue
        bind.execute(programs.insert().values(program_id=body["id"], currency=body["currency"],
                                              starts_on=body["starts_on"], ends_on=body["ends_on"]))
        rules = body["eligibility"]
        for axis, values in (("partner", rules["partner_ids"]), ("tier", rules["tiers"]),
                             ("region", rules["regions"])):
            for value in sorted(set(values)) or ["*"]:
                bind.execute(scope.insert().values(program_id=body["id"], axis=axis, value=value))


def downgrade() -> None:
    op.drop_table("rebate_program_scope")
    op.drop_table("rebate_programs")
    op.drop_table("rebate_sources")
