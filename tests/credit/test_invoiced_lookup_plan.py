"""Credit's "was this source invoiced / credited / debited already?" searches the ``ref_id`` index.

Given the partner too, SQLite searched the partner's index instead and read every invoice of
the account: the invoice step of ``o2c bench history`` took 13 ms at 10,000 orders against
5.6 ms at 10. SQLite's plan is deterministic, so the plan is checked here.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from libs.store.database import Database
from libs.store.migrate import migrate
from services.credit.application import read_models


async def test_the_source_lookup_searches_the_ref_index_on_sqlite(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'plans.db'}")
    await migrate(db)
    await db.dispose()
    plain = sqlite3.connect(tmp_path / "plans.db")
    try:
        plan = " ".join(row[-1] for row in plain.execute(
            f"EXPLAIN QUERY PLAN {read_models._BY_REF.sqlite}", ("invoice", "dsp-1")).fetchall())
    finally:
        plain.close()
    assert "SEARCH documents USING INDEX ix_documents_ref" in plan, plan
