"""Which failures are outages: a dependency is briefly unreachable, not a bug.

A request that fails because the database restarts, refuses connections, cut
one mid-request, is out of connections, or (SQLite) stays locked past its busy
timeout, answers 503 with ``Retry-After`` (``libs.runtime.http``): retrying the
same request later is correct, and nothing was half done (each command is one
transaction). The same holds for another service that does not answer, and for
a Kafka broker that cannot be reached or answers "not now" (a retriable error;
an operator's redrive reads the topics to heal parked gaps). Every other error
is a bug and stays a logged 500.

The failure can arrive bare (asyncpg on the store's driver pool or inside a
document batch, sqlite3 from the connection, an ``OSError`` while connecting) or wrapped by SQLAlchemy
(``DBAPIError.orig``) or chained (``__cause__``), so the whole chain is read.
"""

from __future__ import annotations

import sqlite3

import asyncpg
import httpx
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

RETRY_AFTER_SECONDS = 5
"""What a 503 asks clients to wait: about one PostgreSQL restart."""

_UNAVAILABLE_SQLSTATES = ("08", "57P", "53")
"""PostgreSQL classes: connection exception (08), shutdown or starting up (57P01-57P03),
insufficient resources such as too many connections or a full disk (53)."""

_SQLITE_UNAVAILABLE = ("database is locked", "database table is locked", "disk i/o error",
                       "unable to open database file", "database or disk is full")
"""SQLite messages meaning "not now": another writer held the lock past the busy timeout,
or the file cannot be reached."""

_CLOSED_DRIVER = ("connection is closed", "connection was closed", "pool is closing",
                  "pool is closed")

_CHAIN_LIMIT = 8


_ROLLED_BACK_SQLSTATES = ("40001", "40P01")
"""PostgreSQL rolled the transaction back to let others go on: a serialization failure (40001)
or the victim of a deadlock (40P01)."""


def is_rolled_back_to_retry(error: BaseException) -> bool:
    """True when PostgreSQL ended the transaction to break a deadlock or a serialization conflict:
    nothing of it was kept, and the whole transaction may simply run again."""
    return any((getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)) in _ROLLED_BACK_SQLSTATES
               for cause in _chain(error))


def is_outage(error: BaseException) -> bool:
    """True when ``error`` (or what it wraps) says a dependency is unreachable, not a bug."""
    return any(_names_outage(cause) for cause in _chain(error))


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending and len(seen) < _CHAIN_LIMIT:
        current = pending.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        orig = getattr(current, "orig", None)
        pending += [orig if isinstance(orig, BaseException) else None,
                    current.__cause__, current.__context__]
    return seen


def _names_outage(error: BaseException) -> bool:
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, PoolTimeout | OSError | httpx.TransportError):
        return True  # no pooled connection in time; refused, reset or timed-out sockets
    if isinstance(error, KafkaConnectionError | KafkaTimeoutError):
        return True
    if isinstance(error, KafkaError) and error.retriable:
        return True  # the broker says "not now": no leader yet, a coordinator loading
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
        return True
    message = str(error).lower()
    if isinstance(error, asyncpg.InterfaceError):
        return any(text in message for text in _CLOSED_DRIVER)
    if isinstance(error, sqlite3.OperationalError):
        return any(text in message for text in _SQLITE_UNAVAILABLE)
    return False
