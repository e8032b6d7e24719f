"""Fixtures of the projections suites."""

from __future__ import annotations

import pytest

from services.projections.app import SPEC
from tests.conftest import Migrations, migrations_of


@pytest.fixture
def service_migrations() -> Migrations:
    """``db`` comes migrated for the projections service already (see ``tests/conftest.py``)."""
    return migrations_of(SPEC)
