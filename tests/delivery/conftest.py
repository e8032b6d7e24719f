"""Delivery's fixtures: the service on the parametrised database, with a fake orders publisher."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from libs.store.database import Database
from services.delivery.app import SPEC
from tests.conftest import Migrations, migrations_of
from tests.delivery.support import WAREHOUSE_SECRET, FakePublisher, fix_clock
from tests.service_support import RunningService, running


@pytest.fixture
def service_migrations() -> Migrations:
    """``db`` comes migrated for the delivery service already (see ``tests/conftest.py``)."""
    return migrations_of(SPEC)


@pytest.fixture
async def svc(db: Database) -> AsyncIterator[RunningService]:
    async with running(SPEC, db) as service:
        fix_clock(service)
        await FakePublisher(service).issue_key("warehouse", secret=WAREHOUSE_SECRET)
        yield service


@pytest.fixture
def orders(svc: RunningService) -> FakePublisher:
    return FakePublisher(svc)
