"""Fixtures of the partners suites: the service on each database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from libs.store.database import Database
from services.partners.app import SPEC
from tests.conftest import Migrations, migrations_of
from tests.service_support import RunningService, running


@pytest.fixture
def service_migrations() -> Migrations:
    """``db`` comes migrated for the partners service already (see ``tests/conftest.py``)."""
    return migrations_of(SPEC)


@pytest.fixture
async def svc(db: Database) -> AsyncIterator[RunningService]:
    async with running(SPEC, db) as service:
        yield service
