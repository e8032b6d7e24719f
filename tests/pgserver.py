"""A private PostgreSQL server for tests that crash the database (``o2c.pgserver`` does the work).

The shared server at ``O2C_TEST_PG_URL`` must never be killed by a test, so outage
and fault tests run their own cluster on a free port. When the binaries are
missing the test skips locally and fails in CI (``integration_unavailable``).

    with private_postgres() as server:
        database = Database(server.url, schema="s")
        server.kill()       # kill -9 of the postmaster and every backend
        server.start()      # crash recovery: the same cluster, port and data
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from o2c.pgserver import PrivatePostgres, PrivatePostgresError, find_bin_dir
from tests.conftest import integration_unavailable


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started private server, stopped and deleted afterwards."""
    if find_bin_dir() is None:
        integration_unavailable("no PostgreSQL binaries (initdb, postgres); set O2C_PG_BIN")
    server = PrivatePostgres()
    try:
        server.start()
    except (PrivatePostgresError, OSError) as error:
        server.close()
        integration_unavailable(f"private PostgreSQL server did not start: {error}")
    try:
        yield server
    finally:
        server.close()
