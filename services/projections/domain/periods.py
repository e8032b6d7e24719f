"""Report periods and the period a report is compared with.

A period is a closed range of days ``start..end``. ``compare``:

- ``previous_period``: the same number of days ending the day before ``start``;
- ``previous_year``: the same calendar days one year earlier (29 February
  becomes 28 February).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

Compare = Literal["previous_period", "previous_year"]


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def holds(self, day: str | date | None) -> bool:
        """Whether the day (``YYYY-MM-DD`` text or a date) falls in the period."""
        if day is None:
            return False
        on = date.fromisoformat(day[:10]) if isinstance(day, str) else day
        return self.start <= on <= self.end


def year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def compared(period: Period, compare: Compare) -> Period:
    """The period ``period`` is compared with."""
    if compare == "previous_year":
        return Period(year_before(period.start), year_before(period.end))
    end = period.start - timedelta(days=1)
    return Period(end - timedelta(days=period.days - 1), end)
