"""Fixtures of the orders suites: the service on each database, and a scratch publisher."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from libs.store.database import Database
from libs.store.migrate import migrate
from services.orders.app import SPEC
from tests.conftest import Migrations, migrations_of
from tests.orders.support import Publisher
from tests.service_support import RunningService, running


@pytest.fixture
def service_migrations() -> Migrations:
    """``db`` comes migrated for the orders service already (see ``tests/conftest.py``)."""
    return migrations_of(SPEC)


@pytest.fixture
async def svc(db: Database) -> AsyncIterator[RunningService]:
    async with running(SPEC, db) as service:
        yield service


@pytest.fixture
async def publisher(svc: RunningService, tmp_path: Path) -> AsyncIterator[Publisher]:
    """Other services' events, appended to a scratch store and fed to the orders consumer."""
    scratch = Database(f"sqlite:///{tmp_path / 'foreign.db'}")
    await migrate(scratch)
    yield Publisher(scratch, svc)
    await scratch.dispose()
