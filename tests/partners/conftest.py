"""Fixtures of the partners suites: the service on each database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from libs.store.database import Database
from services.partners.app import SPEC
from tests.service_support import RunningService, running


@pytest.fixture
async def svc(db: Database) -> AsyncIterator[RunningService]:
    async with running(SPEC, db) as service:
        yield service
