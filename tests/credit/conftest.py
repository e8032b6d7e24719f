"""Fixtures of the credit suites: the service on each database, with a fixed clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from libs.store.database import Database
from services.credit.app import SPEC
from tests.conftest import Migrations, migrations_of
from tests.credit.support import Feed, fix_clock
from tests.service_support import RunningService, running


@pytest.fixture
def service_migrations() -> Migrations:
    """``db`` comes migrated for the credit service already (see ``tests/conftest.py``)."""
    return migrations_of(SPEC)


@pytest.fixture
async def svc(db: Database) -> AsyncIterator[RunningService]:
    async with running(SPEC, db) as service:
        fix_clock(service)
        yield service


@pytest.fixture
def feed(svc: RunningService) -> Feed:
    return Feed(svc)
