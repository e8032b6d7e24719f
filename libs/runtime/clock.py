"""The business clock of a service: the real time, or a rehearsal clock started at another instant.

``O2C_CLOCK_START`` (an RFC 3339 instant) makes every service's business clock
start at that instant when the real clock reads ``O2C_CLOCK_ANCHOR`` (default:
when the process started; ``o2c up`` sets one anchor for all services, so they
agree and a restarted service picks up the same clock) and run forward with
real time: ``now = start + (real now - anchor)``. Business dates (invoice and
due dates, "today" in every rule) and the events' ``occurred_at`` then follow
it. It is for rehearsal environments and tests that need past- or
future-dated facts; a service logs a warning at start when it is set. Never
set it in production: dates written under it are kept as facts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from libs.events.base import utc_now

CLOCK_START_ENV = "O2C_CLOCK_START"
CLOCK_ANCHOR_ENV = "O2C_CLOCK_ANCHOR"


def business_clock(start: datetime | None, anchor: datetime | None = None) -> Callable[[], datetime]:
    """The clock a service runs on (``start`` None: the real clock)."""
    if start is None:
        return utc_now
    offset = start - (anchor or utc_now())
    return lambda: utc_now() + offset
