"""The benchmarks' smoke tests: small sizes, every key present and sane, no timing asserted."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.conftest import PG_URL, integration_unavailable


def positive_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@pytest.fixture
def pg_url() -> str:
    """The test PostgreSQL URL (skips locally, fails in CI, when it is unreachable)."""

    async def probe() -> None:
        conn = await asyncpg.connect(PG_URL, timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        integration_unavailable(f"PostgreSQL at {PG_URL} unreachable: {error}")
    return PG_URL
