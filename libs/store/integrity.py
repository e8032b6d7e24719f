"""Tamper evidence: the per-stream chain and the relay's global seal, keyed or not.

Two chains protect the stored events (each link computed by ``libs.events.chain``):

1. Each stream chains its events at append time, in the writing service:
   ``stream_hash = link(previous stream_hash | header | payload)``.
   Editing an event, or removing or inserting one inside a stream, breaks it.
2. The relay, reading in commit-safe order, seals every event it passes:
   ``chain_hash = link(previous chain_hash | position | stream_hash)``.
   That chain also catches a removed last event of a stream, a stream rewritten
   with recomputed stream hashes (but not seals), and rows slipped in behind the
   relay.

``verify`` walks both, in one snapshot, and reports the first bad position.
Events appended since the relay last sealed are covered by their stream chain
only.

What each mode defends against
------------------------------
**Keyed** (``O2C_AUDIT_KEYS`` or the ``audit-key`` file; HMAC-SHA256 under a
key the database never holds). An attacker with read and write access to the
database but not the key cannot append an event that verifies, cannot rewrite
or recompute a stream or the seals, and cannot downgrade keyed links to the
public formula: every such link is reported (``altered``, ``unkeyed``). Keys
rotate: the first configured key signs, all configured keys verify, each link
names its key id.

Not covered by the key: whoever holds it (a service's host) can write valid
links; and a *truncation* (deleting the newest events together with their
seals and setting the relay's seal head back to an older value, all of which
were valid links) leaves a shorter chain that verifies. That is what an
*anchor* outside the database is for: ``verify(db, chain, anchor)`` checks
that a seal seen earlier (``SealAnchor``, kept by the projections service in
its own database at every cross-service verification) is still there,
unchanged, and reports ``rolled-back`` otherwise. The projections' archive
also keeps a second copy of every published event, truncated or not.

**Unkeyed** (no key configured; the report says ``mode: "unkeyed"`` with a
warning). The public sha256 formula finds accidental damage and edits made
without recomputing the chains, but anyone with write access to the database
can append a forged event with a correct hash, or rewrite history and
recompute every hash and seal, and ``verify`` passes.

A table of attacks against modes: ``docs/audit.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.chain import UNKEYED, Chain, LinkTally, Verdict
from libs.events.envelope import GENESIS_HASH
from libs.store.database import Database
from libs.store.schema import event_seals, events, relay_state
from libs.store.store import _COLUMNS, envelope_from_row

PAGE = 2000
MAX_PROBLEMS = 100


def seal_parts(previous: str, position: int, stream_hash: str) -> tuple[bytes]:
    """What a seal covers: the previous seal, the event's position and its stream link."""
    return (f"{previous}|{position}|{stream_hash}".encode(),)


def seal_hash(previous: str, position: int, stream_hash: str, chain: Chain = UNKEYED) -> str:
    """One link of the global chain (``chain``: the relay's store's, keyed or not)."""
    return chain.sign(seal_parts(previous, position, stream_hash))


@dataclass(frozen=True, slots=True)
class SealAnchor:
    """A seal as once seen, kept outside the store (the projections' database) to compare with.

    Seals only ever grow, so seal ``seq`` must still exist with the same ``chain_hash``:
    if it is gone or different, the store was truncated or rewritten behind the anchor.
    """

    seq: int
    position: int
    chain_hash: str

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "position": self.position, "chain_hash": self.chain_hash}


@dataclass(frozen=True, slots=True)
class Problem:
    position: int
    kind: str
    detail: str


@dataclass
class VerifyReport:
    checked: int = 0
    sealed: int = 0
    tally: LinkTally = field(default_factory=lambda: LinkTally("unkeyed"))
    """Links per key id and what needs saying about them (``libs.events.chain``)."""
    problems: list[Problem] = field(default_factory=list)
    seal_head: SealAnchor | None = None
    """The last seal of the chain walked: what an anchor outside the store should keep."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad(self) -> int | None:
        return min((p.position for p in self.problems), default=None)

    @property
    def rolled_back(self) -> bool:
        return any(p.kind == "rolled-back" for p in self.problems)

    def add(self, position: int, kind: str, detail: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(position, kind, detail))

    def bad_link(self, position: int, verdict: Verdict, what: str, *, seal: bool = False) -> None:
        """A link that did not check out: ``altered``, ``unkeyed`` or ``unknown-key``
        (``seal-`` in front for a seal)."""
        self.tally.found(verdict)
        self.add(position, f"seal-{verdict}" if seal else verdict,
                 f"{what}: {_LINK_DETAIL[verdict]}")

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"ok": self.ok, "checked": self.checked, "sealed": self.sealed,
                                  **self.tally.as_dict()}
        if self.seal_head is not None:
            result["seal_head"] = self.seal_head.as_dict()
        if not self.ok:
            result["first_bad"] = self.first_bad
            result["problems"] = [
                {"position": p.position, "kind": p.kind, "detail": p.detail}
                for p in sorted(self.problems, key=lambda p: p.position)
            ]
        return result


_LINK_DETAIL: dict[str, str] = {
    "altered": "link does not match its content",
    "unkeyed": "link has no key (written before the key was configured, or downgraded)",
    "unknown-key": "link is under a key id that is not configured",
}


async def verify(db: Database, chain: Chain = UNKEYED,
                 anchor: SealAnchor | None = None) -> VerifyReport:
    """Check every stream chain and the global seal of one store under ``chain``'s keys,
    and that the seal chain still holds ``anchor`` (a seal seen earlier, kept elsewhere)."""
    report = VerifyReport(tally=LinkTally(chain.mode))
    async with db.reader.connect() as conn:
        if db.is_postgres:  # one snapshot for the whole walk, while the relay keeps sealing
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            await _verify_streams(conn, chain, report)
            anchored = await _verify_seals(conn, chain, report, anchor)
    if anchor is not None and anchored != anchor.chain_hash:
        report.add(anchor.position, "rolled-back",
                   f"seal {anchor.seq}, anchored outside the store, is "
                   + ("gone: the newest events and seals were removed" if anchored is None
                      else "different: the seal chain was rewritten"))
    return report


async def _verify_streams(conn: AsyncConnection, chain: Chain, report: VerifyReport) -> None:
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
            report.tally.saw(envelope.stream_hash)
            if envelope.stream_version != expected_version:
                report.add(position, "removed",
                           f"{stream}: expected version {expected_version}, "
                           f"found {envelope.stream_version}")
            elif (verdict := chain.check(envelope.stream_hash,
                                         envelope.chain_parts(previous))) != "ok":
                report.bad_link(position, verdict, f"{stream} v{envelope.stream_version}")
            previous = envelope.stream_hash or ""
            expected_version = envelope.stream_version + 1
        last = rows[-1]
        last_key = (last[3], last[5])


async def _verify_seals(conn: AsyncConnection, chain: Chain, report: VerifyReport,
                        anchor: SealAnchor | None) -> str | None:
    """Walk the seals; answers the chain hash found at the anchor's seq (None: no such seal)."""
    after_seq, head, anchored = 0, GENESIS_HASH, None
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
            report.tally.saw(chain_hash)
            if seq != after_seq + 1:
                report.add(position, "seal-missing", f"seal {after_seq + 1} to {seq - 1} removed")
            verdict = chain.check(chain_hash, seal_parts(head, position, sealed_stream_hash))
            if verdict != "ok":
                report.bad_link(position, verdict, f"seal {seq}", seal=True)
            if current_stream_hash is None:
                report.add(position, "removed", f"sealed event at position {position} is gone")
            elif current_stream_hash != sealed_stream_hash:
                report.add(position, "altered", f"event at position {position} was rewritten")
            if anchor is not None and seq == anchor.seq:
                anchored = chain_hash
            head, after_seq = chain_hash, seq
            report.seal_head = SealAnchor(seq, position, chain_hash)

    state = (await conn.execute(select(relay_state))).mappings().all()
    for relay in state:
        if relay["sealed_seq"] != after_seq or relay["sealed_hash"] != head:
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
    return anchored
