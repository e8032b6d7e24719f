"""Smoke tests of ``o2c bench api|chain|history|replay`` at small sizes.

They start real services (and the embedded broker), so each takes seconds to a
minute. They check that every named key is there and sane, not how fast anything is.
"""

from __future__ import annotations

import orjson
import pytest

from tests.bench.conftest import positive_number

pytestmark = [pytest.mark.postgres, pytest.mark.broker]


def test_bench_api_reports_both_databases_and_the_baseline(pg_url: str) -> None:
    from o2c.bench.api import run

    result = run(requests=40, rounds=1, concurrency=8, pg_url=pg_url)

    for key in ("sqlite_rps", "pg_rps", "baseline_sqlite_rps", "baseline_pg_rps", "sqlite_ratio",
                "pg_ratio", "sqlite_p99_ms", "pg_p99_ms"):
        assert positive_number(result[key]), (key, result[key])
    for backend in ("sqlite", "pg"):
        for side in ("rounds", "baseline_rounds"):
            [one] = result["detail"][backend][side]
            assert (one["ok"], one["errors"]) == (40, {}), (backend, side, one)
    orjson.dumps(result)


def test_bench_chain_finishes_every_order() -> None:
    from o2c.bench.chain import run

    result = run(orders=6, partners=2, concurrency=3, timeout=90)

    assert result["orders"] == 6
    assert result["stuck"] == 0, result
    for key in ("orders_per_s", "approved_p99_s", "invoiced_p99_s", "projected_p99_s", "max_rss_mb"):
        assert positive_number(result[key]), (key, result[key])
    assert set(result["detail"]["rss_mb"]) == {"partners", "orders", "credit", "delivery", "rebates",
                                                "projections"}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_bench_history_times_each_account(backend: str, request: pytest.FixtureRequest) -> None:
    from o2c.bench.history import run

    url = request.getfixturevalue("pg_url") if backend == "postgres" else None
    result = run(sizes=[5, 40], rounds=1, database_url=url)

    for key in ("ms_at_5", "ms_at_40", "ratio_40_to_5"):
        assert positive_number(result[key]), (key, result[key])
    for size in (5, 40):
        assert set(result["detail"]["ms_per_step"][size]) == {"funds_review", "invoice", "payment"}
        assert positive_number(result["detail"]["first_order_ms"][size])


def test_bench_replay_rebuilds_what_the_baseline_builds(pg_url: str) -> None:
    from o2c.bench.replay import run

    result = run(events=1_000, rounds=1, pg_url=pg_url, template_orders=3)

    assert result["events"] >= 1_000
    assert result["same_documents"] is True
    for key in ("eps", "baseline_eps", "ratio", "cpu_us_per_event", "baseline_cpu_us_per_event",
                "max_rss_mb"):
        assert positive_number(result[key]), (key, result[key])
