"""The command path of a route: transaction, conflict retry and ``Idempotency-Key``.

A route takes ``Command`` (or ``IdempotentCommand`` for a creating POST) and
answers ``await command.run(lambda unit: ..., body)``; the command function gets
a ``libs.runtime.commands.Unit`` and returns plain data. The answer's status is
the route's own ``status_code``.

``Idempotency-Key``: a repeat with the same key and the same body answers the
first response again, byte for byte (same status, same body); the same key with
another body answers 409. A key is scoped to (caller, route, path parameters):
the route is the method and the path template of the matched route
(``POST /v1/holds/{order_id}/release``), never typed by hand, and the path
parameters follow it (``... order_id=ord_1``), so one key sent for ``ord_1`` and
for ``ord_2`` runs two commands and never answers one with the other's answer.
The record is written in the same transaction as the command's effect, so a
crash leaves either both or neither.

Concurrent requests with one key queue behind each other, and every request but the
one that stored an answer first replays that answer (never a 409 from the command
seeing the first one's effect). Each transaction first *claims* the key: one
``INSERT ... ON CONFLICT DO NOTHING`` of the key's row with an empty answer (status 0),
whose answer is filled in after the command ran, in the same transaction, by an
``UPDATE ... WHERE status = 0 RETURNING``. No one ever sees the unfilled row: it
becomes visible at commit, answer and all. On PostgreSQL a second transaction claiming
the same key waits on the first one's uncommitted row until it commits (then its claim
inserts nothing) or rolls back (then it claims the key itself); on SQLite write
transactions are already serial (``BEGIN IMMEDIATE`` behind the process's write lock).

The claim's outcome is read from the answer's ``UPDATE``: it fills the row only if
this transaction inserted it (a stored answer has a status). So the claim needs no
round trip of its own: on PostgreSQL it rides with the command's first statement
(a deferrable write, ``libs.store.sql.Statement``), and the document the command
writes last rides with the answer. When the key was taken, the command ran for
nothing: its transaction is rolled back, and the stored answer is read in a
transaction of its own and sent again (the same bytes; another body: 409). A command
that fails with a key looks for a stored answer the same way before its error goes
out, so a repeat whose command now refuses (the first one cancelled the order, say)
still replays the first answer. Statements per keyed command: the claim and the
answer (a replay: those, the command's own, and the read of the stored answer).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.base import EventMetadata, format_timestamp, utc_now
from libs.events.codec import canonical_json
from libs.runtime import openapi_doc
from libs.runtime.auth import Principal, principal_of
from libs.runtime.commands import Unit, transact
from libs.runtime.errors import Conflict
from libs.runtime.host import ServiceContext
from libs.store.errors import ConcurrencyError
from libs.store.sql import Statement
from libs.telemetry import context

IDEMPOTENCY_KEY = "Idempotency-Key"
MAX_KEY_LENGTH = 200
MAX_ROUTE_LENGTH = 200

CommandFunction = Callable[[Unit], Awaitable[Any]]


class CommandRoute:
    """What a command route gets: its service, caller, route key and ``Idempotency-Key``."""

    def __init__(self, request: Request, principal: Principal, key: str | None) -> None:
        route = request.scope["route"]
        self.ctx: ServiceContext = request.app.state.ctx
        self.principal = principal
        self.route = route_key(f"{request.method} {route.path}", request.path_params)
        self.status = getattr(route, "status_code", None) or 200
        self.key = key
        if key is not None and len(key) > MAX_KEY_LENGTH:
            raise Conflict(f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters",
                           slug="bad-idempotency-key")

    @property
    def replay_scope(self) -> str | None:
        """``caller\\nroute\\nkey`` when the request has a key (stable across its retries)."""
        if self.key is None:
            return None
        return f"{self.principal.key_id}\n{self.route}\n{self.key}"

    async def run(self, command: CommandFunction, body: BaseModel | None = None) -> Response:
        """Run ``command``, its effect kept once per key: its plain-data answer is the response."""
        meta = EventMetadata(actor=self.principal.actor, correlation_id=context.correlation())

        def unit(conn: AsyncConnection) -> Unit:
            return Unit(self.ctx, conn, meta, self.principal)

        if self.key is None:
            return _answer(self.status, await transact(self.ctx, lambda conn: command(unit(conn))))
        digest = self._digest(body)
        principal, route, key = self.principal.key_id, self.route, self.key

        async def attempt(conn: AsyncConnection) -> Response:
            await _CLAIM.execute(conn, principal, route, key, digest, format_timestamp(utc_now()))
            payload = await command(unit(conn))
            stored_body = canonical_json(payload).decode("utf-8")
            if not await _ANSWER.fetch(conn, principal, route, key, self.status, stored_body):
                raise _Taken(self.route)  # another request's key: roll back, replay its answer
            return _stored_answer(self.status, stored_body)

        try:
            return await transact(self.ctx, attempt)
        except Exception as failure:
            stored = await self._stored(failure)
            if stored is None:
                raise
            if stored[0] != digest:
                raise Conflict("this Idempotency-Key was used with a different body",
                               slug="idempotency-key-reused") from None
            return _stored_answer(stored[1], stored[2])

    async def _stored(self, failure: Exception) -> Sequence[Any] | None:
        """``(request_sha256, status, body)`` stored under this request's key, or None.

        Read in a write transaction of its own: on SQLite that waits for the group commit
        that may still hold the answer (``libs.store.database``), so nothing is replayed
        before it is durable. If it cannot be read, ``failure`` goes out (when the key
        was taken, the reason it cannot be read does)."""
        assert self.key is not None
        principal, route, key = self.principal.key_id, self.route, self.key
        try:
            rows = await transact(self.ctx, lambda conn: _STORED.fetch(conn, principal, route, key))
        except Exception:
            if isinstance(failure, _Taken):
                raise
            return None
        if not rows and isinstance(failure, _Taken):  # cannot happen (keys are never deleted)
            raise ConcurrencyError(self.route, None, "Idempotency-Key taken but not stored")
        return rows[0] if rows else None

    @staticmethod
    def _digest(body: BaseModel | None) -> str:
        return hashlib.sha256(canonical_json(body.model_dump(mode="json") if body is not None else {})
                              ).hexdigest()


class _Taken(Exception):
    """The claimed key was another request's (its answer is stored): this attempt rolls back."""


# Sent straight to the driver (``libs.store.sql.Statement``): every keyed command runs them.
_CLAIM = Statement(
    "INSERT INTO idempotency_keys (principal, route, key, request_sha256, status, body, created_at) "
    "VALUES ($1, $2, $3, $4, 0, '', $5) ON CONFLICT DO NOTHING", deferrable=True)
_STORED = Statement("SELECT request_sha256, status, body FROM idempotency_keys "
                    "WHERE principal = $1 AND route = $2 AND key = $3")
_ANSWER = Statement("UPDATE idempotency_keys SET status = $4, body = $5 "
                    "WHERE principal = $1 AND route = $2 AND key = $3 AND status = 0 RETURNING status")


def route_key(route: str, params: dict[str, Any]) -> str:
    """``METHOD /path/{template}`` and the values of its path parameters, at most 200 characters."""
    if not params:
        return route
    scoped = route + "".join(f" {name}={value}" for name, value in sorted(params.items()))
    if len(scoped) <= MAX_ROUTE_LENGTH:
        return scoped
    return f"{route} sha256:{hashlib.sha256(canonical_json(params)).hexdigest()}"[:MAX_ROUTE_LENGTH]


def replay_id(namespace: uuid.UUID, route: CommandRoute) -> uuid.UUID | None:
    """A deterministic id for something a keyed request records outside its own transaction."""
    scope = route.replay_scope
    return uuid.uuid5(namespace, scope) if scope is not None else None


def _answer(status: int, payload: Any) -> Response:
    if status == 204:
        return Response(status_code=204)
    return _stored_answer(status, canonical_json(payload).decode("utf-8"))


def _stored_answer(status: int, stored_body: str) -> Response:
    """What was stored: the first request and every replay get the same bytes."""
    return Response(stored_body.encode("utf-8"), status_code=status, media_type="application/json")


async def _command_route(request: Request) -> CommandRoute:
    return CommandRoute(request, principal_of(request), None)


@openapi_doc.takes_header(IDEMPOTENCY_KEY)
async def _idempotent_command_route(request: Request) -> CommandRoute:
    return CommandRoute(request, principal_of(request), request.headers.get(IDEMPOTENCY_KEY))


# Both take the request alone, not ``Authenticated`` and ``Header(...)`` parameters: FastAPI
# solves each level of a dependency tree and validates each declared header on every request.
# The caller is worked out once per request either way (``principal_of``), and the header is
# documented as FastAPI would (``openapi_doc.takes_header``).
Command = Annotated[CommandRoute, Depends(_command_route)]
"""A command route: one transaction, run again on a concurrency conflict."""

IdempotentCommand = Annotated[CommandRoute, Depends(_idempotent_command_route)]
"""A creating command route that also takes ``Idempotency-Key`` (replays the first answer)."""
