"""``o2c bench ...``: each benchmark prints one JSON object on stdout (progress goes to stderr)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import typer

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"

bench_app = typer.Typer(help="Benchmarks.", no_args_is_help=True)

PG_URL = typer.Option(None, "--pg-url", envvar="O2C_BENCH_PG_URL", help=f"Default: {DEFAULT_PG_URL}")
ROUNDS = typer.Option(3, "--rounds", min=1, help="Interleaved rounds (figures are their medians).")
PROFILE = typer.Option(None, "--profile", help="Also sample the service with py-spy (untimed); "
                                               "raw stacks go to this folder, top frames into the JSON.")


def _print_json(measure: Callable[[], dict[str, Any]]) -> None:
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON only
        result = measure()
    options = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    sys.stdout.write(orjson.dumps(result, option=options).decode() + "\n")


@bench_app.callback()
def _bench() -> None:
    """Benchmarks that print one JSON object."""


@bench_app.command("store")
def store_command(
    events: int = typer.Option(4000, "--events", min=8,
                               help="Events per round for the single and concurrent metrics."),
    rounds: int = ROUNDS,
    pg_url: str | None = PG_URL,
    skip_pg: bool = typer.Option(False, "--skip-pg", help="Only the SQLite metrics."),
) -> None:
    """The store's append path (the one every service takes) against eventsourcing 9.x."""
    from o2c.bench.store import run

    _print_json(lambda: run(events=events, rounds=rounds, pg_url=pg_url, skip_pg=skip_pg))


@bench_app.command("api")
def api_command(
    requests: int = typer.Option(2000, "--requests", min=10, help="Requests per round."),
    rounds: int = ROUNDS,
    concurrency: int = typer.Option(32, "--concurrency", min=1, help="Concurrent clients."),
    pg_url: str | None = PG_URL,
    whole_system: bool = typer.Option(False, "--whole-system",
                                      help="Run all six services (default: partners and orders)."),
    profile_dir: Path | None = PROFILE,
) -> None:
    """POST /v1/orders through the real orders service against a minimal FastAPI baseline."""
    from o2c.bench.api import run

    _print_json(lambda: run(requests=requests, rounds=rounds, concurrency=concurrency, pg_url=pg_url,
                            whole_system=whole_system, profile_dir=profile_dir))


@bench_app.command("history")
def history_command(
    sizes: str = typer.Option("10,1000,10000", "--sizes", help="Orders behind each account."),
    rounds: int = ROUNDS,
    database_url: str | None = typer.Option(None, "--database-url",
                                            help="PostgreSQL URL (default: a SQLite file)."),
) -> None:
    """Funds review + invoice + payment on accounts with growing histories (credit's real paths)."""
    from o2c.bench.history import run

    _print_json(lambda: run(sizes=[int(s) for s in sizes.split(",")], rounds=rounds,
                            database_url=database_url))


@bench_app.command("chain")
def chain_command(
    database_url: str | None = typer.Option(None, "--database-url",
                                            help="PostgreSQL URL (default: SQLite files)."),
    orders: int = typer.Option(2000, "--orders", min=1, help="Orders to drive through the chain."),
    rate: float | None = typer.Option(None, "--rate", min=0.1,
                                      help="Offer this many orders/s (open loop) instead of "
                                           "as many as the system accepts."),
    partners: int = typer.Option(8, "--partners", min=1),
    concurrency: int = typer.Option(16, "--concurrency", min=1, help="Placing clients (closed loop)."),
    timeout: float | None = typer.Option(None, "--timeout",
                                         help="An order not done this long after the last was "
                                              "placed is stuck (default: max(120, orders/2) s)."),
    profile_dir: Path | None = PROFILE,
) -> None:
    """Orders through all six steps of the running system, over HTTP."""
    from o2c.bench.chain import run

    _print_json(lambda: run(orders=orders, database_url=database_url, rate=rate, partners=partners,
                            concurrency=concurrency, timeout=timeout, profile_dir=profile_dir))


@bench_app.command("replay")
def replay_command(
    events: int = typer.Option(100_000, "--events", min=100, help="Archived events to rebuild from."),
    rounds: int = ROUNDS,
    pg_url: str | None = PG_URL,
) -> None:
    """`o2c replay` over a large archive against a hand-batched asyncpg fold (PostgreSQL)."""
    from o2c.bench.replay import run

    _print_json(lambda: run(events=events, rounds=rounds, pg_url=pg_url))
