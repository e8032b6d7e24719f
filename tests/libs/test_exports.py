"""CSV and XLSX exports of any list (libs.runtime.exports), through the real app factory.

The app here is ``create_app`` with one paged list route that makes its rows on
demand (``ROWS`` of them, pages of ``limit``), so a 100,000-row export costs no
database: what is measured is the export layer's own memory.
"""

from __future__ import annotations

import csv
import io
import tracemalloc
from decimal import Decimal
from typing import Any

import httpx
import openpyxl
import pytest
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from libs.runtime import exports
from libs.runtime.documents import decode_cursor, encode_cursor
from libs.runtime.http import create_app
from libs.runtime.money import amount, grouped
from libs.runtime.params import Cursor, Limit

ROWS = {"n": 5, "narrow": 0}


def _item(i: int) -> dict[str, Any]:
    if ROWS["narrow"]:
        return {"id": i, "total_minor": i}
    return {"id": f"r{i:07d}", "name": "=HYPERLINK(\"x\")" if i == 1 else f"row {i}",
            "total_minor": 12345 + i, "currency": "JPY" if i == 2 else "CNY",
            "lines": [{"sku": "A", "qty": i}], "paid": i % 2 == 0, "detail": {"count": i}}


def _app() -> Any:
    router = APIRouter()

    @router.get("/v1/things")
    async def list_things(limit: Limit = 50, cursor: Cursor = None) -> dict[str, Any]:
        start = int(decode_cursor(cursor)) if cursor else 0
        end = min(start + limit, ROWS["n"])
        return {"items": [_item(i) for i in range(start, end)],
                "next_cursor": encode_cursor(f"{end:07d}") if end < ROWS["n"] else None}

    @router.get("/v1/report")
    async def report() -> dict[str, Any]:
        return {"as_of": "2025-01-01", "currency": "KWD", "items": [{"partner_id": "p1", "due_minor": 1234}],
                "totals": {"due_minor": 1234}, "next_cursor": None}

    @router.get("/page", response_class=HTMLResponse)
    async def page() -> str:
        return "<p>hi</p>"

    return create_app(title="t", routers=[router])


@pytest.fixture
async def client() -> Any:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t") as c:
        yield c


def test_amounts_are_exact_decimals_in_the_currencys_units() -> None:
    assert [str(amount(v, c)) for v, c in ((12345, "CNY"), (5, None), (12345, "JPY"), (12345, "KWD"),
                                           (-100050, "CNY"), (10**20 + 1, "CNY"))] == \
        ["123.45", "0.05", "12345", "12.345", "-1000.50", "1000000000000000000.01"]
    assert grouped(123456, "CNY") == "1,234.56" and grouped(123456, "JPY") == "123,456"


async def test_csv_pages_through_the_whole_list_with_money_as_decimals(client: httpx.AsyncClient) -> None:
    ROWS["n"] = 5
    answer = await client.get("/v1/things?limit=2&format=csv")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == 'attachment; filename="things.csv"'
    assert answer.headers["cache-control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["id"] for r in rows] == [f"r{i:07d}" for i in range(5)]
    assert list(rows[0]) == ["id", "name", "total", "currency", "lines", "paid", "detail.count"]
    assert [(r["total"], r["currency"]) for r in rows[:3]] == [("123.45", "CNY"), ("123.46", "CNY"),
                                                               ("12347", "JPY")]
    assert rows[1]["name"] == '=HYPERLINK("x")' and rows[3]["lines"] == '[{"sku":"A","qty":3}]'
    assert (rows[0]["paid"], rows[1]["paid"]) == ("true", "false")
    by_accept = await client.get("/v1/things?limit=2", headers={"Accept": "text/csv"})
    assert by_accept.text == answer.text
    assert (await client.get("/v1/things", headers={"Accept": "application/json, text/csv;q=0.5"})
            ).json()["items"][0]["id"] == "r0000000"


async def test_a_report_exports_its_items_in_its_currency(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/report?format=csv")
    assert list(csv.reader(io.StringIO(answer.text))) == [["partner_id", "due", "currency"],
                                                          ["p1", "1.234", "KWD"]]


async def test_xlsx_holds_the_same_rows_and_text_never_becomes_a_formula(client: httpx.AsyncClient) -> None:
    ROWS["n"] = 5
    answer = await client.get("/v1/things?limit=2&format=xlsx")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(answer.content), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("id", "name", "total", "currency", "lines", "paid", "detail.count")
    assert [Decimal(str(r[2])) for r in rows[1:]] == [Decimal("123.45"), Decimal("123.46"),
                                                      Decimal("12347"), Decimal("123.48"), Decimal("123.49")]
    assert rows[2][1] == '=HYPERLINK("x")' and rows[1][5] is True and rows[4][6] == 3


async def test_bad_formats_and_unexportable_answers_are_problems(
        client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = await client.get("/v1/things?format=pdf")
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["field"] == "query.format"
    page = await client.get("/page?format=csv")
    assert page.status_code == 406 and page.json()["type"].endswith("/not-acceptable")
    refused = await client.get("/v1/things?format=csv&limit=0")
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "query.limit"
    assert (await client.get("/v1/things?format=json")).json()["items"]
    ROWS["n"] = 5
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 4)  # a header and three rows
    too_long = await client.get("/v1/things?format=xlsx&limit=2")
    assert too_long.status_code == 422 and too_long.json()["type"].endswith("/too-many-rows")


class _Sink:
    """Receives an export over raw ASGI, keeping only its size (the client must not buffer it)."""

    def __init__(self) -> None:
        self.status = 0
        self.size = 0
        self.lines = 0

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        else:
            body = message.get("body", b"")
            self.size += len(body)
            self.lines += body.count(b"\n")


async def _export(app: Any, query: bytes) -> _Sink:
    sink = _Sink()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": "/v1/things", "raw_path": b"/v1/things", "query_string": query,
             "root_path": "", "headers": [(b"host", b"t")], "client": ("127.0.0.1", 1), "server": ("t", 80)}
    await app(scope, receive, sink.send)
    return sink


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_100000_rows_export_in_bounded_memory(fmt: str) -> None:
    app = _app()
    ROWS.update(n=100_000, narrow=1)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        sink = await _export(app, f"format={fmt}&limit=200".encode())
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
        ROWS.update(n=5, narrow=0)
    assert sink.status == 200
    if fmt == "csv":
        assert sink.lines == 100_001
    assert sink.size > 1_000_000  # the whole export went out...
    assert peak < 6_000_000, f"peak {peak} bytes for {sink.size} bytes exported"  # ...never all held
