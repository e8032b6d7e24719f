"""Smoke test of the ``o2c bench store`` harness: every metric is produced, no timing asserted."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import orjson
import pytest

pytest.importorskip("eventsourcing.postgres")

from o2c.bench.store import run

PG_URL = os.environ.get("O2C_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

EPS_KEYS = (
    "sqlite_single_eps",
    "sqlite_single_eventsourcing_eps",
    "pg_single_eps",
    "pg_single_eventsourcing_eps",
    "pg_batch100_eps",
    "pg_read_all_eps",
    "pg_concurrent8_eps",
    "pg_concurrent8_eventsourcing_eps",
)
RATIO_KEYS = ("pg_single", "sqlite_single", "pg_concurrent8")


def _positive_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _require_postgres() -> None:
    async def probe() -> None:
        conn = await asyncpg.connect(PG_URL, timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        if os.environ.get("O2C_REQUIRE_INTEGRATION") == "1":
            pytest.fail(f"PostgreSQL at {PG_URL} unreachable: {error}", pytrace=False)
        pytest.skip(f"PostgreSQL at {PG_URL} unreachable: {error}")


@pytest.mark.postgres
def test_bench_store_reports_every_metric() -> None:
    _require_postgres()

    result = run(events=200, rounds=1, pg_url=PG_URL, skip_pg=False)

    for key in EPS_KEYS:
        assert key in result, key
        assert _positive_number(result[key]), (key, result[key])
        assert len(result["detail"][key]) == 1, key
    for key in RATIO_KEYS:
        assert _positive_number(result["ratios"][key]), (key, result["ratios"])
    assert _positive_number(result["runs"])
    for key in ("single", "concurrent8", "batch100", "read_all", "payload_bytes"):
        assert _positive_number(result["events"][key]), (key, result["events"])
    assert result["events"]["read_all"] >= result["events"]["batch100"]
    for key in ("python", "sqlite", "postgres", "eventsourcing"):
        assert result["versions"][key], key
    orjson.dumps(result)  # the command prints it as JSON
