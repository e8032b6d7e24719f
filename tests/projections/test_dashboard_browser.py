"""The finance dashboard in a real headless browser (Debian's chromium, driven by Playwright).

The projections service runs under uvicorn on a free port; the browser signs in
with a finance key, reads the figures and checks them against the API, follows
the drill-down to a partner, downloads an export and fails on any console error.
A screenshot is written beside the test's files (``O2C_DASHBOARD_SCREENSHOT``
names a path to copy it to, as docs/dashboard.png was made). Without chromium
or Playwright the test skips (fails with ``O2C_REQUIRE_INTEGRATION=1``).
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from libs.store.database import Database
from services.projections.api.dashboard_page import money
from tests.conftest import integration_unavailable
from tests.projections.support import invoice, projections, registered

CHROMIUM = ("chromium", "chromium-browser", "/usr/lib/chromium/chromium")


def _chromium() -> str:
    found = next((path for name in CHROMIUM if (path := shutil.which(name))), None)
    if found is None:
        integration_unavailable("no chromium for the browser test (apt-get install chromium)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        integration_unavailable("Playwright is not installed (pip install playwright)")
    return str(found)


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://localhost:{port}"  # localhost: a secure context, so the Secure cookie is kept
    finally:
        server.should_exit = True
        await task


async def test_a_finance_user_signs_in_reads_drills_down_and_exports(db: Database, tmp_path: Path) -> None:
    chromium = _chromium()
    from playwright.async_api import async_playwright

    async with projections(db) as feed:
        await feed.emit("partner-p1", [registered("p1", region="east", tier="gold")])
        await feed.emit("partner-p2", [registered("p2", region="west", tier="silver")])
        for n, (pid, due, amount, region, tier) in enumerate((
                ("p1", date(2025, 1, 31), 1234_56, "east", "gold"),
                ("p1", date(2025, 2, 28), 500_00, "east", "gold"),
                ("p2", date(2025, 3, 30), 2750_10, "west", "silver"))):
            await feed.emit(f"invoice-i{n}", [invoice(f"i{n}", f"o{n}", pid, issued_on=date(2025, n + 1, 1),
                                                      due_on=due, lines=[("A", 1, amount)],
                                                      region=region, tier=tier)])
        finance = await feed.key("finance")
        secret = finance["Authorization"].split(" ", 1)[1]
        async with served(feed.svc.app) as base, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                context = await browser.new_context(accept_downloads=True,
                                                    viewport={"width": 1280, "height": 900})
                page = await context.new_page()
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))

                await page.goto(f"{base}/dashboard?as_of=2025-03-15")
                assert page.url.endswith("/dashboard/sign-in")
                await page.fill("#key", secret)
                await page.click("button[type=submit]")
                await page.wait_for_url(f"{base}/dashboard")
                await page.goto(f"{base}/dashboard?as_of=2025-03-15")
                assert secret not in page.url

                async with httpx.AsyncClient(base_url=base, headers=finance) as api:
                    aging = (await api.get("/v1/views/receivables/aging?as_of=2025-03-15")).json()
                    by_region = (await api.get("/v1/views/sales?group_by=region")).json()
                for column in ("total_minor", "d1_30_minor", "current_minor"):
                    shown = await page.text_content(f'[data-figure="aging-total-{column}"]')
                    assert shown == money(aging["totals"][column]), column
                for row in by_region["items"]:
                    shown = await page.text_content(f'[data-figure="sales-region-{row["key"]}"]')
                    assert shown == money(row["amount_minor"])
                assert await page.locator('svg[data-chart="sales-month"] rect').count() == 3
                shot = tmp_path / "dashboard.png"
                await page.screenshot(path=str(shot), full_page=True)
                if target := os.environ.get("O2C_DASHBOARD_SCREENSHOT"):
                    shutil.copy(shot, target)

                async with page.expect_download() as download_info:
                    await page.click('[data-export="aging-csv"]')
                download = await download_info.value
                text = Path(await download.path()).read_text(encoding="utf-8")  # noqa: ASYNC240
                rows = list(csv.DictReader(io.StringIO(text)))
                assert {r["partner_id"]: r["total"] for r in rows} == {
                    r["partner_id"]: str(r["total_minor"] // 100) + f".{r['total_minor'] % 100:02d}"
                    for r in aging["items"]}

                await page.select_option("#f-region", "west")
                await page.click("form.filters button")
                await page.wait_for_url("**region=west**")
                assert await page.locator("[data-partner]").count() == 1

                await page.goto(f"{base}/dashboard?as_of=2025-03-15")
                await page.click('[data-partner="p1"]')
                await page.wait_for_url(f"{base}/dashboard/partners/p1")
                assert await page.text_content('[data-figure="invoice-i0-total"]') == "1,234.56"
                assert await page.text_content('[data-figure="statement-i1-balance"]') == "1,734.56"
                await page.screenshot(path=str(tmp_path / "partner.png"), full_page=True)

                await page.goto(f"{base}/dashboard")
                await page.click("#sign-out")
                await page.wait_for_url(f"{base}/dashboard/sign-in")
                await page.goto(f"{base}/dashboard")
                assert page.url.endswith("/dashboard/sign-in")
                assert errors == []
            finally:
                await browser.close()
