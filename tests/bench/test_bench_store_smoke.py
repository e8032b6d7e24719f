"""Smoke test of the ``o2c bench store`` harness: every metric is produced, no timing asserted."""

from __future__ import annotations

import orjson
import pytest

from o2c.bench.store import run
from tests.bench.conftest import positive_number

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


@pytest.mark.postgres
def test_bench_store_reports_every_metric(pg_url: str) -> None:
    # In the test, not at import: a skip here is a failure under O2C_REQUIRE_INTEGRATION=1.
    pytest.importorskip("eventsourcing.postgres")
    result = run(events=200, rounds=1, pg_url=pg_url, skip_pg=False)

    for key in EPS_KEYS:
        assert key in result, key
        assert positive_number(result[key]), (key, result[key])
        assert len(result["detail"][key]) == 1, key
    for key in RATIO_KEYS:
        assert positive_number(result["ratios"][key]), (key, result["ratios"])
    assert positive_number(result["runs"])
    for key in ("single", "concurrent8", "batch100", "read_all", "payload_bytes"):
        assert positive_number(result["events"][key]), (key, result["events"])
    assert result["events"]["read_all"] >= result["events"]["batch100"]
    for key in ("python", "sqlite", "postgres", "eventsourcing"):
        assert result["versions"][key], key
    orjson.dumps(result)  # the command prints it as JSON
