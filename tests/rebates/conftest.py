"""Fixtures of the rebates suites."""

from __future__ import annotations

import pytest

from services.rebates.app import SPEC
from tests.conftest import Migrations, migrations_of


@pytest.fixture
def service_migrations() -> Migrations:
    """``db`` comes migrated for the rebates service already (see ``tests/conftest.py``)."""
    return migrations_of(SPEC)
