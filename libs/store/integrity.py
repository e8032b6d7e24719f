"""Tamper evidence: the per-stream hash chain and the relay's global seal.

Two chains protect the stored events:

1. Each stream chains its events at append time:
   ``stream_hash = sha256(previous stream_hash | header | payload)``.
   Editing an event, or removing or inserting one inside a stream, breaks it.
2. The relay, reading in commit-safe order, seals every event it passes:
   ``chain_hash = sha256(previous chain_hash | position | stream_hash)``.
   That chain also catches a removed last event of a stream, a stream rewritten
   with recomputed stream hashes (but not seals), and rows slipped in behind the
   relay.

``verify`` walks both, in one snapshot, and reports the first bad position.
Events appended since the relay last sealed are covered by their stream chain
only.

What it does not stop: someone with write access to the database who rewrites
events *and* recomputes every stream hash, seal and the relay's seal head. The
chains are unkeyed and their head lives in the same database; the projections
service's archive holds a second copy of every event and hash, which is where
such a rewrite shows (anchoring the seal head outside the database, or keying
the chain with a secret kept elsewhere, is the next step).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.envelope import GENESIS_HASH
from libs.store.database import Database
from libs.store.schema import event_seals, events, relay_state
from libs.store.store import _COLUMNS, envelope_from_row

PAGE = 2000
MAX_PROBLEMS = 100


def seal_hash(previous: str, position: int, stream_hash: str) -> str:
    """One link of the global chain."""
    return hashlib.sha256(f"{previous}|{position}|{stream_hash}".encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class Problem:
    position: int
    kind: str
    detail: str


@dataclass
class VerifyReport:
    checked: int = 0
    sealed: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad(self) -> int | None:
        return min((p.position for p in self.problems), default=None)

    def add(self, position: int, kind: str, detail: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(position, kind, detail))

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"ok": self.ok, "checked": self.checked, "sealed": self.sealed}
        if not self.ok:
            result["first_bad"] = self.first_bad
            result["problems"] = [
                {"position": p.position, "kind": p.kind, "detail": p.detail}
                for p in sorted(self.problems, key=lambda p: p.position)
            ]
        return result


async def verify(db: Database) -> VerifyReport:
    """Check every stream chain and the global seal of one store."""
    report = VerifyReport()
    async with db.reader.connect() as conn:
        if db.is_postgres:  # one snapshot for the whole walk, while the relay keeps sealing
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            await _verify_streams(conn, report)
            await _verify_seals(conn, report)
    return report


async def _verify_streams(conn: AsyncConnection, report: VerifyReport) -> None:
    last_key: tuple[str, int] = ("", 0)
    stream, expected_version, previous = None, 1, GENESIS_HASH
    while True:
        rows = (
            await conn.execute(
                select(*_COLUMNS)
                .where(tuple_(events.c.stream_id, events.c.version) > tuple_(*last_key))
                .order_by(events.c.stream_id, events.c.version)
                .limit(PAGE)
            )
        ).all()
        if not rows:
            return
        for row in rows:
            envelope = envelope_from_row(row)
            if envelope.stream_id != stream:
                stream, expected_version, previous = envelope.stream_id, 1, GENESIS_HASH
            position = int(envelope.position or 0)
            report.checked += 1
            if envelope.stream_version != expected_version:
                report.add(position, "removed",
                           f"{stream}: expected version {expected_version}, "
                           f"found {envelope.stream_version}")
            elif envelope.chained_hash(previous) != envelope.stream_hash:
                report.add(position, "altered",
                           f"{stream} v{envelope.stream_version}: hash does not match its content")
            previous = envelope.stream_hash or ""
            expected_version = envelope.stream_version + 1
        last = rows[-1]
        last_key = (last[3], last[5])


async def _verify_seals(conn: AsyncConnection, report: VerifyReport) -> None:
    after_seq, chain = 0, GENESIS_HASH
    while True:
        rows = (
            await conn.execute(
                select(event_seals.c.seq, event_seals.c.position, event_seals.c.stream_hash,
                       event_seals.c.chain_hash, events.c.stream_hash)
                .select_from(event_seals.outerjoin(
                    events, events.c.position == event_seals.c.position))
                .where(event_seals.c.seq > after_seq)
                .order_by(event_seals.c.seq)
                .limit(PAGE)
            )
        ).all()
        if not rows:
            break
        for seq, position, sealed_stream_hash, chain_hash, current_stream_hash in rows:
            report.sealed += 1
            if seq != after_seq + 1:
                report.add(position, "seal-missing", f"seal {after_seq + 1} to {seq - 1} removed")
            if seal_hash(chain, position, sealed_stream_hash) != chain_hash:
                report.add(position, "seal-altered", f"seal {seq} does not chain")
            if current_stream_hash is None:
                report.add(position, "removed", f"sealed event at position {position} is gone")
            elif current_stream_hash != sealed_stream_hash:
                report.add(position, "altered", f"event at position {position} was rewritten")
            chain, after_seq = chain_hash, seq

    state = (await conn.execute(select(relay_state))).mappings().all()
    for relay in state:
        if relay["sealed_seq"] != after_seq or relay["sealed_hash"] != chain:
            report.add(int(relay["sealed_position"]), "seal-missing",
                       f"relay {relay['relay']} sealed up to {relay['sealed_seq']}, "
                       f"the chain ends at {after_seq}")
        unsealed = (
            await conn.execute(
                select(events.c.position)
                .select_from(events.outerjoin(
                    event_seals, event_seals.c.position == events.c.position))
                .where(and_(
                    event_seals.c.seq.is_(None),
                    tuple_(events.c.tx_id, events.c.position)
                    <= tuple_(relay["sealed_tx"], relay["sealed_position"]),
                ))
                .order_by(events.c.position)
                .limit(MAX_PROBLEMS)
            )
        ).scalars().all()
        for position in unsealed:
            report.add(position, "inserted", f"event at position {position} is behind the seal")
