"""Delivery's fixtures: the service on the parametrised database, with a fake orders publisher."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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


@asynccontextmanager
async def delivery_on(db: Database) -> AsyncIterator[RunningService]:
    """The delivery service on ``db``, its clock fixed, with the warehouse's key."""
    async with running(SPEC, db) as service:
        fix_clock(service)
        await FakePublisher(service).issue_key("warehouse", secret=WAREHOUSE_SECRET)
        yield service


@pytest.fixture
async def svc(db: Database) -> AsyncIterator[RunningService]:
    async with delivery_on(db) as service:
        yield service


@pytest.fixture
async def pg_svc(pg_db: Database) -> AsyncIterator[RunningService]:
    """The service on PostgreSQL only (what holds only where writers run side by side)."""
    async with delivery_on(pg_db) as service:
        yield service


@pytest.fixture
def orders(svc: RunningService) -> FakePublisher:
    return FakePublisher(svc)
