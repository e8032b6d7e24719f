"""``o2c bench store``: our event store against eventsourcing 9.x, same machine, same run.

Prints one JSON object with events per second for each metric. Every metric is
measured in ``rounds`` interleaved rounds (ours, theirs, ours, theirs, ...) and
reported as the median; the per-round figures are kept under ``detail``.

What is compared
----------------
- single: one event per call, a new stream per event, sequential. Ours is the path
  every service takes (``EventStore.append(..., expected_version=0, [event], conn=conn)``
  inside ``Database.transaction()``, i.e. ``_append_in`` on a SQLAlchemy connection);
  theirs is ``ApplicationRecorder.insert_events([StoredEvent(...)])``.
- concurrent8: the same with 8 writers (ours: asyncio tasks on one store;
  theirs: 8 threads on one recorder with a pool of 8 connections).
- batch100 (ours): 100 events per append into a new stream (the same path).
- read_all (ours): every stored event, in pages of 1000, from ``ORIGIN`` (after one
  untimed-for-the-median first pass, reported as ``detail.pg_read_all_first_pass_eps``).

Both libraries store the same ~300-byte order-placed payload. Ours receives a
domain event and serialises, hashes and wraps it in an envelope inside the
timed loop; eventsourcing receives already serialised bytes (its mapper is not
timed), so the comparison, if anything, favours eventsourcing. Both SQLite
setups use WAL with ``synchronous=FULL`` (ours sets it, SQLite's default is the
same for theirs, checked and reported under ``settings``).

Our path stays asynchronous (one long-lived event loop, driven between the
synchronous eventsourcing rounds, which run in the main thread or, for the
concurrent case, in a thread pool, never inside the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, make_url, select

from libs.events.base import DomainEvent, EventMetadata
from libs.events.codec import canonical_json
from libs.store.database import Database
from libs.store.migrate import migrate
from libs.store.schema import events as events_table
from libs.store.store import ORIGIN, EventStore

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_EVENTS = 4000
DEFAULT_ROUNDS = 3
CONCURRENCY = 8
BATCH_SIZE = 100
READ_PAGE = 1000
READ_TARGET = 50_000
"""Events the store holds (at least) when ``read_all`` is timed, for ``events >= 2000``."""

STREAM_TYPE = "order"
TOPIC = "o2c.bench.store:OrderPlaced"


# -- the payload -------------------------------------------------------------------


class OrderLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: str
    quantity: int
    unit_price: int


class OrderPlaced(DomainEvent):
    """A realistic order-placed event (its canonical JSON is about 300 bytes)."""

    TYPE = "OrderPlaced"

    order_id: str
    partner_id: str
    channel: str
    currency: str
    lines: tuple[OrderLine, ...]
    total: int
    requested_delivery: str


EVENT = OrderPlaced(
    order_id="ord-7f3c2a9e-51d4-4b8e-9a61-0c2d5e8f1b37",
    partner_id="ptn-000417",
    channel="distributor",
    currency="EUR",
    lines=(
        OrderLine(sku="SKU-100245-BLK", quantity=12, unit_price=18_950),
        OrderLine(sku="SKU-220871-WHT", quantity=4, unit_price=129_900),
    ),
    total=747_000,
    requested_delivery="2026-12-03",
)
STATE = canonical_json(EVENT.payload())
"""The same payload bytes, given to eventsourcing as ``StoredEvent.state``."""

SINGLE = [EVENT]
BATCH = [EVENT] * BATCH_SIZE


def _meta() -> EventMetadata:
    return EventMetadata(actor="bench")  # a fresh correlation id, as for a new request


def _stream_id() -> str:
    return f"order-{uuid.uuid4().hex}"


async def _append(store: EventStore, events: list[OrderPlaced]) -> None:
    """One append into a new stream the way the services append: in a transaction, with ``conn``."""
    async with store.db.transaction() as conn:
        await store.append(_stream_id(), STREAM_TYPE, 0, events, _meta(), conn=conn)


# -- counts and helpers ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counts:
    single: int
    concurrent8: int
    batch100: int
    read_all_min: int
    warmup: int

    @classmethod
    def for_events(cls, events: int) -> Counts:
        if events < CONCURRENCY:
            raise ValueError(f"--events must be at least {CONCURRENCY}")
        per_task = events // CONCURRENCY
        batch = max(BATCH_SIZE, (5 * events) // BATCH_SIZE * BATCH_SIZE)
        return cls(
            single=events,
            concurrent8=per_task * CONCURRENCY,
            batch100=batch,
            read_all_min=min(READ_TARGET, 25 * events),
            warmup=min(100, max(10, events // 20)),
        )


def _eps(count: int, started: float) -> float:
    return count / (time.perf_counter() - started)


def _plain_pg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _eventsourcing() -> Any:
    try:
        import eventsourcing.persistence as persistence
    except ImportError as error:  # a dev dependency: pip install 'eventsourcing[postgres]'
        raise RuntimeError("the store benchmark needs eventsourcing[postgres] (dev extra)") from error
    return persistence


# -- our store -----------------------------------------------------------------------


async def _ours_single(store: EventStore, count: int, warmup: int) -> float:
    for _ in range(warmup):
        await _append(store, SINGLE)
    started = time.perf_counter()
    for _ in range(count):
        await _append(store, SINGLE)
    return _eps(count, started)


async def _ours_concurrent(store: EventStore, count: int, warmup: int) -> float:
    per_task = count // CONCURRENCY

    async def writer(n: int) -> None:
        for _ in range(n):
            await _append(store, SINGLE)

    await asyncio.gather(*(writer(max(1, warmup // CONCURRENCY)) for _ in range(CONCURRENCY)))
    started = time.perf_counter()
    await asyncio.gather(*(writer(per_task) for _ in range(CONCURRENCY)))
    return _eps(per_task * CONCURRENCY, started)


async def _ours_batch(store: EventStore, count: int) -> float:
    await _append(store, BATCH)  # warm-up
    calls = count // BATCH_SIZE
    started = time.perf_counter()
    for _ in range(calls):
        await _append(store, BATCH)
    return _eps(calls * BATCH_SIZE, started)


async def _stored_count(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(events_table))).scalar_one())


async def _fill(store: EventStore, at_least: int) -> int:
    stored = await _stored_count(store.db)
    while stored < at_least:
        await _append(store, BATCH)
        stored += BATCH_SIZE
    return await _stored_count(store.db)


async def _ours_read_all(store: EventStore, expected: int) -> float:
    started = time.perf_counter()
    after, read = ORIGIN, 0
    while True:
        page = await store.read_all(after, limit=READ_PAGE)
        if not page.events:
            break
        read += len(page.events)
        after = page.checkpoints[-1]
    result = _eps(read, started)
    if read != expected:
        raise RuntimeError(f"read_all returned {read} events, the store holds {expected}")
    return result


async def _ours_sqlite_round(path: Path, counts: Counts) -> float:
    db = Database(f"sqlite:///{path}")
    try:
        await migrate(db)
        return await _ours_single(EventStore(db), counts.single, counts.warmup)
    finally:
        await db.dispose()


# -- eventsourcing ---------------------------------------------------------------------


def _stored_event() -> Any:
    return _eventsourcing().StoredEvent(
        originator_id=uuid.uuid4(), originator_version=1, topic=TOPIC, state=STATE
    )


def _theirs_single(recorder: Any, count: int, warmup: int) -> float:
    stored_event = _eventsourcing().StoredEvent
    for _ in range(warmup):
        recorder.insert_events([_stored_event()])
    started = time.perf_counter()
    for _ in range(count):
        recorder.insert_events([
            stored_event(originator_id=uuid.uuid4(), originator_version=1, topic=TOPIC, state=STATE)
        ])
    return _eps(count, started)


def _theirs_concurrent(recorder: Any, pool: ThreadPoolExecutor, count: int, warmup: int) -> float:
    stored_event = _eventsourcing().StoredEvent
    per_task = count // CONCURRENCY

    def writer(n: int) -> None:
        for _ in range(n):
            recorder.insert_events([
                stored_event(
                    originator_id=uuid.uuid4(), originator_version=1, topic=TOPIC, state=STATE
                )
            ])

    list(pool.map(writer, [max(1, warmup // CONCURRENCY)] * CONCURRENCY))
    started = time.perf_counter()
    list(pool.map(writer, [per_task] * CONCURRENCY))
    return _eps(per_task * CONCURRENCY, started)


def _theirs_sqlite_round(path: Path, counts: Counts) -> float:
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

    datastore = SQLiteDatastore(str(path))
    try:
        recorder = SQLiteApplicationRecorder(datastore)
        recorder.create_table()
        return _theirs_single(recorder, counts.single, counts.warmup)
    finally:
        datastore.close()


# -- the rounds ------------------------------------------------------------------------


def _interleaved(
    rounds: int, detail: dict[str, list[float]], pairs: list[tuple[str, Callable[[int], float]]]
) -> None:
    """Round 1: every measurement in order, then round 2, ...; per-round eps into ``detail``."""
    for round_no in range(rounds):
        for name, measure in pairs:
            detail.setdefault(name, []).append(round(measure(round_no), 1))


def _bench_sqlite(
    runner: asyncio.Runner, folder: Path, counts: Counts, rounds: int, detail: dict[str, list[float]]
) -> None:
    _interleaved(rounds, detail, [
        ("sqlite_single_eps",
         lambda r: runner.run(_ours_sqlite_round(folder / f"ours-{r}.db", counts))),
        ("sqlite_single_eventsourcing_eps",
         lambda r: _theirs_sqlite_round(folder / f"theirs-{r}.db", counts)),
    ])


@contextlib.contextmanager
def _pg_schemas(runner: asyncio.Runner, url: str, *names: str) -> Iterator[str]:
    """Create the schemas, yield the server version, drop the schemas afterwards."""

    async def admin(statements: list[str]) -> str:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            for statement in statements:
                await conn.execute(statement)
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    version = runner.run(admin([f'CREATE SCHEMA "{name}"' for name in names]))
    try:
        yield version
    finally:
        runner.run(admin([f'DROP SCHEMA IF EXISTS "{name}" CASCADE' for name in names]))


def _bench_pg(
    runner: asyncio.Runner, url: str, counts: Counts, rounds: int, detail: dict[str, list[float]]
) -> dict[str, Any]:
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    plain = _plain_pg_url(url)
    parsed = make_url(plain)
    suffix = uuid.uuid4().hex[:12]
    ours_schema, theirs_schema = f"bench_{suffix}", f"bench_es_{suffix}"
    info: dict[str, Any] = {"schemas": [ours_schema, theirs_schema]}
    with _pg_schemas(runner, plain, ours_schema, theirs_schema) as server_version:
        info["server_version"] = server_version
        db = Database(plain, schema=ours_schema)
        datastore = PostgresDatastore(
            dbname=parsed.database or "postgres",
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username or "postgres",
            password=parsed.password or "",
            pool_size=CONCURRENCY,
            schema=theirs_schema,
        )
        pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="es-bench")
        try:
            runner.run(migrate(db))
            store = EventStore(db)
            recorder = PostgresApplicationRecorder(datastore, events_table_name="bench_events")
            recorder.create_table()
            _interleaved(rounds, detail, [
                ("pg_single_eps",
                 lambda _: runner.run(_ours_single(store, counts.single, counts.warmup))),
                ("pg_single_eventsourcing_eps",
                 lambda _: _theirs_single(recorder, counts.single, counts.warmup)),
            ])
            _interleaved(rounds, detail, [
                ("pg_concurrent8_eps",
                 lambda _: runner.run(_ours_concurrent(store, counts.concurrent8, counts.warmup))),
                ("pg_concurrent8_eventsourcing_eps",
                 lambda _: _theirs_concurrent(recorder, pool, counts.concurrent8, counts.warmup)),
            ])
            _interleaved(rounds, detail, [
                ("pg_batch100_eps", lambda _: runner.run(_ours_batch(store, counts.batch100))),
            ])
            stored = runner.run(_fill(store, counts.read_all_min))
            info["read_all_events"] = stored
            # The first pass over freshly written rows also pays PostgreSQL's one-off costs
            # (hint bits, no statistics yet); it is kept in ``detail`` but not in the median.
            detail["pg_read_all_first_pass_eps"] = [
                round(runner.run(_ours_read_all(store, stored)), 1)
            ]
            _interleaved(rounds, detail, [
                ("pg_read_all_eps", lambda _: runner.run(_ours_read_all(store, stored))),
            ])
        finally:
            pool.shutdown(wait=True)
            datastore.close()
            runner.run(db.dispose())
    return info


# -- the result --------------------------------------------------------------------------


def _ratio(medians: dict[str, float], ours: str, theirs: str) -> float | None:
    if ours in medians and theirs in medians and medians[theirs] > 0:
        return round(medians[ours] / medians[theirs], 3)
    return None


def run(events: int, rounds: int, pg_url: str | None, skip_pg: bool) -> dict[str, Any]:
    """Run the benchmark; the result is JSON-ready (see the module doc)."""
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    counts = Counts.for_events(events)
    url = pg_url or os.environ.get("O2C_BENCH_PG_URL") or DEFAULT_PG_URL
    started = time.perf_counter()
    detail: dict[str, list[float]] = {}
    pg_info: dict[str, Any] = {}
    with asyncio.Runner() as runner, tempfile.TemporaryDirectory(prefix="o2c-bench-") as folder:
        _bench_sqlite(runner, Path(folder), counts, rounds, detail)
        if not skip_pg:
            pg_info = _bench_pg(runner, url, counts, rounds, detail)
        with contextlib.closing(sqlite3.connect(Path(folder) / "probe.db")) as probe:
            default_synchronous = probe.execute("PRAGMA synchronous").fetchone()[0]

    medians = {
        name: round(statistics.median(values), 1)
        for name, values in detail.items()
        if name != "pg_read_all_first_pass_eps"
    }
    ratios = {
        name: value
        for name, value in (
            ("pg_single", _ratio(medians, "pg_single_eps", "pg_single_eventsourcing_eps")),
            ("sqlite_single",
             _ratio(medians, "sqlite_single_eps", "sqlite_single_eventsourcing_eps")),
            ("pg_concurrent8",
             _ratio(medians, "pg_concurrent8_eps", "pg_concurrent8_eventsourcing_eps")),
        )
        if value is not None
    }
    targets: dict[str, bool] = {"sqlite_single >= 1x eventsourcing": ratios["sqlite_single"] >= 1}
    if not skip_pg:
        targets |= {
            "pg_single >= 2x eventsourcing": ratios["pg_single"] >= 2,
            "pg_batch100_eps >= 20000": medians["pg_batch100_eps"] >= 20_000,
            "pg_read_all_eps >= 100000": medians["pg_read_all_eps"] >= 100_000,
        }
    return {
        **medians,
        "ratios": ratios,
        "targets": targets,
        "events": {
            "single": counts.single,
            **(
                {}
                if skip_pg
                else {
                    "concurrent8": counts.concurrent8,
                    "batch100": counts.batch100,
                    "read_all": pg_info["read_all_events"],
                }
            ),
            "warmup_per_round": counts.warmup,
            "payload_bytes": len(STATE),
        },
        "runs": rounds,
        "statistic": "median of rounds",
        "detail": detail,
        "versions": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "postgres": pg_info.get("server_version"),
            "eventsourcing": _version("eventsourcing"),
            "sqlalchemy": _version("sqlalchemy"),
            "asyncpg": _version("asyncpg"),
            "aiosqlite": _version("aiosqlite"),
            "psycopg": _version("psycopg"),
        },
        "settings": {
            "sqlite_journal_mode": "wal (both)",
            "sqlite_synchronous_ours": "FULL",
            "sqlite_synchronous_eventsourcing": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(
                default_synchronous, str(default_synchronous)
            ),
            "pg_pool_ours": 10,
            "pg_pool_eventsourcing": CONCURRENCY,
            "event_loop": type(asyncio.get_event_loop_policy()).__name__,
        },
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
