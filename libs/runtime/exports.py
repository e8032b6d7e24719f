"""Every list and report as CSV or an XLSX workbook, without a line of code per route.

``Exports`` is pure ASGI middleware inside the ``Boundary``. A GET asking for
``?format=csv`` (or ``Accept: text/csv``) or ``?format=xlsx`` is answered by
running the route as usual for JSON (``format`` taken out of the query, so no
route ever sees it) and turning its answer into rows:

- ``{"items": [...], "next_cursor": ...}``: one row per item; while
  ``next_cursor`` is set the same request is made again with ``cursor=<it>``, so
  the whole list is exported page by page, one page in memory at a time.
- a report with a flat ``items`` list (aging, sales, ...): its items (the
  totals and other top-level figures stay in the JSON answer).
- any other JSON object (a partner 360, an account): one row.

Nested objects become dotted columns (``orders.count``); lists become JSON text.
Money: an integer field ``x_minor`` becomes the column ``x`` holding the exact
decimal amount in the row's ``currency`` (the report's ``currency``, else the
default), with a ``currency`` column added when the row has none
(``libs.runtime.money``). An answer that is not 200 (401, 404, 422, ...) passes
through unchanged; a 200 that is not JSON (a page) answers 406.

CSV streams as it goes (the status is sent with the first page: a page failing
later cuts the download short and is logged). XLSX is written by XlsxWriter in
``constant_memory`` mode (rows flushed to a temporary file, strings inline) and
streamed from that file once complete, so memory stays bounded by one page
either way (``tests/libs/test_exports.py`` measures it for 100,000 rows).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.events.values import DEFAULT_CURRENCY
from libs.runtime import inprocess, money

log = logging.getLogger(__name__)

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA_TYPES = {"csv": CSV, "xlsx": XLSX}
"""The export formats by their ``?format=`` name (``json`` asks for the usual answer)."""
CHUNK = 64 * 1024
XLSX_MAX_ROWS = 1_048_576
"""Excel's rows per worksheet (the header included)."""
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


class ExportRefused(Exception):
    """The request asked for an export that cannot be given (bad format, nothing tabular)."""

    def __init__(self, status: int, slug: str, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail, self.extra = status, slug, title, detail, extra


def _accepted(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The export format ``Accept`` prefers over JSON, if any (``text/csv`` or the XLSX type)."""
    accept = next((v.decode("latin-1") for k, v in headers if k == b"accept"), "")
    weights: dict[str, float] = {}
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        weights[kind.lower()] = max(q, weights.get(kind.lower(), 0.0))
    best = max(((weights.get(media, 0.0), name) for name, media in MEDIA_TYPES.items()), default=(0, ""))
    json_weight = max(weights.get("application/json", 0.0), weights.get("application/*", 0.0),
                      weights.get("*/*", 0.0))
    return best[1] if best[0] > 0 and best[0] >= json_weight else None


def _may_ask(scope: Scope) -> bool:
    """A cheap look before parsing anything: most requests name no export at all."""
    if b"format" in scope.get("query_string", b""):
        return True
    accept = next((v for k, v in scope.get("headers", []) if k == b"accept"), b"")
    return b"csv" in accept or b"spreadsheetml" in accept


def requested_format(scope: Scope) -> tuple[str | None, list[tuple[str, str]]]:
    """(the export format asked for or None, the query without ``format``); raises ``ExportRefused``."""
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    given = [value for name, value in query if name == "format"]
    rest = [(name, value) for name, value in query if name != "format"]
    if not given:
        return _accepted(scope.get("headers", [])), rest
    wanted = given[-1].lower()
    if wanted == "json":
        return None, rest
    if wanted not in MEDIA_TYPES:
        raise ExportRefused(422, "validation", "Invalid request", "1 invalid field(s)", errors=[{
            "field": "query.format", "message": "expected csv, xlsx or json", "type": "enum"}])
    return wanted, rest


# --- rows -------------------------------------------------------------------------------------

def _flatten(item: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in item.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, name + ".")
        elif isinstance(value, list):
            yield name, orjson.dumps(value).decode("utf-8")
        else:
            yield name, value


class Table:
    """The columns of an export, fixed by its first row; money as decimal amounts (module doc)."""

    def __init__(self, first: dict[str, Any], currency: str | None) -> None:
        self.keys = [name for name, _ in _flatten(first)]
        self.money = {name for name, value in _flatten(first)
                      if name.endswith("_minor") and (value is None or isinstance(value, int))}
        self.own_currency = "currency" in self.keys
        self.currency = currency
        self.columns = [name.removesuffix("_minor") if name in self.money else name for name in self.keys]
        self.adds_currency = bool(self.money) and not self.own_currency
        if self.adds_currency:
            self.columns.append("currency")

    def row(self, item: dict[str, Any]) -> list[Any]:
        flat = dict(_flatten(item))
        currency = flat.get("currency") if self.own_currency else None
        currency = currency if isinstance(currency, str) and currency else self.currency
        values = []
        for name in self.keys:
            value = flat.get(name)
            if name in self.money and isinstance(value, int) and not isinstance(value, bool):
                value = money.amount(value, currency)
            values.append(value)
        if self.adds_currency:
            values.append(currency or DEFAULT_CURRENCY)
        return values


def _rows_of(body: Any) -> tuple[list[dict[str, Any]], str | None]:
    """The rows of one JSON answer and the report-level currency (module doc)."""
    if isinstance(body, dict):
        currency = body.get("currency") if isinstance(body.get("currency"), str) else None
        items = body.get("items")
        if isinstance(items, list) and all(isinstance(i, dict) for i in items):
            return items, currency
        return [body], currency
    if isinstance(body, list) and all(isinstance(i, dict) for i in body):
        return body, None
    raise ExportRefused(406, "not-acceptable", "Not acceptable", "this answer has no rows to export")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- writers ----------------------------------------------------------------------------------

class CsvWriter:
    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\r\n")

    def header(self, columns: list[str]) -> None:
        self._csv.writerow(columns)

    def rows(self, rows: list[list[Any]]) -> None:
        self._csv.writerows([_text(v) for v in row] for row in rows)

    def take(self) -> bytes:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode("utf-8")


class XlsxWriter:
    """One sheet written row by row (``constant_memory``); text cells are never formulas."""

    def __init__(self, file: IO[bytes], sheet: str) -> None:
        # Imported on the first spreadsheet, not with the service: its 40-odd modules cost
        # every process about 2 MB that only an xlsx export needs.
        import xlsxwriter  # type: ignore[import-untyped]

        self._book = xlsxwriter.Workbook(file, {"constant_memory": True, "tmpdir": tempfile.gettempdir(),
                                                "strings_to_numbers": False,
                                                "strings_to_formulas": False, "strings_to_urls": False})
        self._sheet = self._book.add_worksheet(sheet[:31] or "export")
        self._bold = self._book.add_format({"bold": True})
        self._formats: dict[int, Any] = {}
        self._row = 0

    def _money_format(self, places: int) -> Any:
        if places not in self._formats:
            pattern = "#,##0" + ("." + "0" * places if places else "")
            self._formats[places] = self._book.add_format({"num_format": pattern})
        return self._formats[places]

    def header(self, columns: list[str]) -> None:
        self._sheet.write_row(self._row, 0, columns, self._bold)
        self._row += 1

    def rows(self, rows: list[list[Any]]) -> None:
        sheet = self._sheet
        if self._row + len(rows) > XLSX_MAX_ROWS:
            raise ExportRefused(422, "too-many-rows", "Too many rows for a workbook",
                                f"a worksheet holds at most {XLSX_MAX_ROWS} rows; export CSV, "
                                "or narrow the list with its filters")
        for row in rows:
            for col, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, bool):
                    sheet.write_boolean(self._row, col, value)
                elif isinstance(value, Decimal):
                    places = -int(value.as_tuple().exponent)
                    sheet.write_number(self._row, col, value, self._money_format(places))
                elif isinstance(value, int | float):
                    sheet.write_number(self._row, col, value)
                else:
                    sheet.write_string(self._row, col, str(value))
            self._row += 1

    def close(self) -> None:
        self._book.close()


# --- the middleware ---------------------------------------------------------------------------

class Exports:
    """Pure ASGI: answers ``?format=csv|xlsx`` and ``Accept: text/csv`` for any JSON GET (module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not _may_ask(scope):
            await self.app(scope, receive, send)
            return
        try:
            wanted, query = requested_format(scope)
        except ExportRefused as refusal:
            await _refuse(refusal, scope, receive, send)
            return
        if wanted is None:
            await self.app(scope, receive, send)
            return
        first = await inprocess.get(self.app, inprocess.child_scope(scope, query=query))
        if first.status != 200:  # 401, 403, 404, 422, 503: the problem as the route gave it
            await send({"type": "http.response.start", "status": first.status, "headers": first.headers})
            await send({"type": "http.response.body", "body": first.body})
            return
        try:
            if not first.is_json:
                raise ExportRefused(406, "not-acceptable", "Not acceptable",
                                    "only JSON answers (lists and reports) can be exported")
            body = first.json()
            _rows_of(body)
        except ExportRefused as refusal:
            await _refuse(refusal, scope, receive, send)
            return
        pages = self._pages(scope, query, body)
        name = _file_name(scope["path"], wanted)
        headers = [(b"content-type", (MEDIA_TYPES[wanted] + ("; charset=utf-8" if wanted == "csv" else ""))
                    .encode("latin-1")),
                   (b"content-disposition", f'attachment; filename="{name}"'.encode("latin-1"))]
        if wanted == "csv":
            await _stream_csv(pages, headers, send)
        else:
            try:
                await _stream_xlsx(pages, headers, send, sheet=name.rsplit(".", 1)[0])
            except ExportRefused as refusal:  # nothing was sent yet
                await _refuse(refusal, scope, receive, send)

    async def _pages(self, scope: Scope, query: list[tuple[str, str]], body: Any) -> Any:
        """Each answer's rows (and currency), following ``next_cursor`` to the end of the list."""
        seen: set[str] = set()
        while True:
            yield _rows_of(body)
            cursor = body.get("next_cursor") if isinstance(body, dict) else None
            if not isinstance(cursor, str) or not cursor or cursor in seen:
                return
            seen.add(cursor)
            page_query = [(k, v) for k, v in query if k != "cursor"] + [("cursor", cursor)]
            answer = await inprocess.get(self.app, inprocess.child_scope(scope, query=page_query))
            if answer.status != 200 or not answer.is_json:
                raise RuntimeError(f"export of {scope['path']} stopped: a later page answered "
                                   f"{answer.status} {answer.body[:200]!r}")
            body = answer.json()


def _file_name(path: str, wanted: str) -> str:
    parts = [p for p in path.split("/") if p and p != "v1"]
    stem = _SAFE_NAME.sub("-", "-".join(parts[-2:]) if parts else "export").strip("-") or "export"
    return f"{stem}.{wanted}"


async def _refuse(refusal: ExportRefused, scope: Scope, receive: Receive, send: Send) -> None:
    from libs.runtime.http import problem

    await problem(refusal.status, refusal.slug, refusal.title, refusal.detail, **refusal.extra)(
        scope, receive, send)


async def _write(pages: Any, writer: CsvWriter | XlsxWriter, after_page: Any) -> None:
    """Every page's rows through ``writer`` (columns from the first row); ``after_page()`` after each."""
    table: Table | None = None
    async for rows, currency in pages:
        if table is None and rows:
            table = Table(rows[0], currency)
            writer.header(table.columns)
        if table is not None:
            table.currency = currency or table.currency
            writer.rows([table.row(item) for item in rows])
        await after_page()


async def _stream_csv(pages: Any, headers: list[tuple[bytes, bytes]], send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    writer = CsvWriter()

    async def flush() -> None:
        await send({"type": "http.response.body", "body": writer.take(), "more_body": True})

    await _write(pages, writer, flush)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _nothing() -> None:
    return None


async def _stream_xlsx(pages: Any, headers: list[tuple[bytes, bytes]], send: Send, *, sheet: str) -> None:
    with tempfile.TemporaryFile() as file:
        writer = XlsxWriter(file, sheet)
        await _write(pages, writer, _nothing)
        await asyncio.to_thread(writer.close)  # zipping the sheet: CPU and disk, off the event loop
        file.seek(0)
        message: Message = {"type": "http.response.start", "status": 200, "headers": headers}
        await send(message)
        while chunk := await asyncio.to_thread(file.read, CHUNK):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
