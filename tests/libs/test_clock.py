"""The rehearsal business clock (``O2C_CLOCK_START``): where it starts, that it runs, who sets it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from libs.events.base import utc_now
from libs.runtime.clock import business_clock
from libs.runtime.settings import RuntimeSettings
from o2c.supervisor import Supervisor

START = datetime(2025, 5, 5, 9, tzinfo=UTC)


def test_unset_is_the_real_clock() -> None:
    assert business_clock(None) is utc_now


def test_it_starts_at_the_start_when_the_real_clock_reads_the_anchor_and_runs_on() -> None:
    clock = business_clock(START, anchor=utc_now() - timedelta(seconds=10))
    first = clock()
    assert timedelta(seconds=10) <= first - START < timedelta(seconds=60)
    assert clock() >= first
    assert business_clock(START)().date() == START.date()


def test_the_setting_wants_an_instant_with_its_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O2C_CLOCK_START", "2025-05-05T09:00:00Z")
    assert RuntimeSettings().clock_start == START
    monkeypatch.setenv("O2C_CLOCK_START", "2025-05-05T09:00:00")
    with pytest.raises(ValidationError):
        RuntimeSettings()


def test_the_supervisor_gives_every_service_one_anchor(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("O2C_CLOCK_START", raising=False)
    monkeypatch.delenv("O2C_CLOCK_ANCHOR", raising=False)
    plain = Supervisor(tmp_path / "plain", admin_token="t", kafka="127.0.0.1:9")
    assert "O2C_CLOCK_ANCHOR" not in plain.service_env()
    rehearsal = Supervisor(tmp_path / "rehearsal", admin_token="t", kafka="127.0.0.1:9",
                           extra_env={"O2C_CLOCK_START": "2025-05-05T09:00:00Z"})
    env = rehearsal.service_env()
    assert env["O2C_CLOCK_ANCHOR"] == rehearsal.clock_anchor == rehearsal.service_env()["O2C_CLOCK_ANCHOR"]
    assert RuntimeSettings(clock_anchor=env["O2C_CLOCK_ANCHOR"]).clock_anchor is not None
