"""The private PostgreSQL server of the chaos tests: killed with SIGKILL, it recovers its data."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from o2c.pgserver import PrivatePostgres, find_bin_dir
from tests.conftest import integration_unavailable

pytestmark = pytest.mark.postgres


async def _run(url: str, sql: str) -> object:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def test_killed_server_comes_back_with_its_committed_data() -> None:
    if find_bin_dir() is None:
        integration_unavailable("no PostgreSQL binaries (set O2C_PG_BIN)")
    with PrivatePostgres() as server:
        asyncio.run(_run(server.url, "CREATE TABLE t AS SELECT 42 AS x"))
        server.kill()
        assert not server.running
        with pytest.raises((OSError, asyncpg.PostgresError)):
            asyncio.run(_run(server.url, "SELECT 1"))
        server.start()
        assert asyncio.run(_run(server.url, "SELECT x FROM t")) == 42
        root = server.root
    assert not root.exists()
