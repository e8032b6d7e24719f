"""Measure one accrual reaction at 10 vs 2,000 accrued invoices, and the accrual document's size.

Not a test (timings belong in benchmarks): ``.venv/bin/python -m tests.rebates.accrual_cost [URL]``
drives the rebates service in process, as tests/rebates do, on a fresh SQLite file
(or the PostgreSQL database URL given, whose schema it must own).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from libs.store.database import Database
from libs.store.migrate import migrate
from libs.store.schema import documents
from services.rebates.app import SPEC
from tests.rebates.support import Feed, issue_key, program_body
from tests.service_support import running

MARKS = (10, 2_000)
SAMPLES = 7


async def measure(url: str) -> dict[str, object]:
    db = Database(url)
    await migrate(db)
    found: dict[str, object] = {}
    async with running(SPEC, db) as svc:
        finance = await issue_key(svc, "finance")
        feed = Feed(svc)
        await feed.partner("p1")
        response = await svc.client.post("/v1/programs", json=program_body(), headers=finance)
        assert response.status_code == 201, response.text
        count = 0
        for mark in MARKS:
            while count < mark - SAMPLES:
                await feed.invoice(f"inv-{count}", "p1", [("tools", 1_000)])
                count += 1
            timings = []
            for _ in range(SAMPLES):
                started = time.perf_counter()
                await feed.invoice(f"inv-{count}", "p1", [("tools", 1_000)])
                timings.append((time.perf_counter() - started) * 1000)
                count += 1
            async with db.read() as conn:
                size = (await conn.execute(select(func.length(documents.c.body)).where(
                    documents.c.kind == "accrual"))).scalar_one()
            found[f"ms_at_{mark}"] = round(statistics.median(timings), 2)
            found[f"accrual_doc_bytes_at_{mark}"] = size
    await db.dispose()
    return found


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{Path(tmp) / 'rebates.db'}"
        print(json.dumps(asyncio.run(measure(url))))


if __name__ == "__main__":
    main()
