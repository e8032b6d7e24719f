"""What every log line and every appended event learns about the work in hand.

Two context variables, set at the edges (the HTTP boundary for a request, the
consumer for each event it applies) and read wherever a line is logged:

- ``request_id``: the caller's ``X-Request-ID`` (or one made up), echoed back;
- ``correlation_id``: the conversation an event belongs to. A request starts one
  (the trace id when tracing is on, so the trace and the events share one id);
  every event the request appends carries it, and every reaction to those events
  runs under it again (``libs.messaging.consumer``), so one order's lines share it
  in every service.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("o2c_request_id", default=None)
correlation_id: ContextVar[uuid.UUID | None] = ContextVar("o2c_correlation_id", default=None)


def correlation() -> uuid.UUID:
    """The correlation id of the work in hand, or a fresh one (work outside any request)."""
    return correlation_id.get() or uuid.uuid4()
