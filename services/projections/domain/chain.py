"""Verifying the archive's copy of every stream's hash chain.

Each archived envelope keeps the stream link its publisher computed. Walking a
stream in version order from the genesis hash, every event must follow its
predecessor's version by one and link to it under the system's audit keys
(``libs.events.chain``); an edited row, a removed one, a rewritten link or,
with keys configured, a link without a key breaks the walk at that row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from libs.events.chain import UNKEYED, Chain, LinkTally, Verdict
from libs.events.envelope import GENESIS_HASH, Envelope

MAX_PROBLEMS = 100
_DETAIL: dict[Verdict, str] = {
    "altered": "hash does not match its content",
    "unkeyed": "link has no key (archived before the key was configured, or downgraded)",
    "unknown-key": "link is under a key id that is not configured",
}


@dataclass(frozen=True, slots=True)
class ArchiveProblem:
    received_seq: int
    service: str
    stream_id: str
    stream_version: int
    kind: str
    detail: str


@dataclass
class ChainWalk:
    """Feed archived envelopes ordered by (service, stream, version); read the verdict."""

    chain: Chain = UNKEYED
    checked: int = 0
    problems: list[ArchiveProblem] = field(default_factory=list)
    tally: LinkTally = field(init=False)
    _stream: tuple[str, str] | None = None
    _expected_version: int = 1
    _previous: str = GENESIS_HASH

    def __post_init__(self) -> None:
        self.tally = LinkTally(self.chain.mode)

    def feed(self, received_seq: int, service: str, envelope: Envelope) -> None:
        stream = (service, envelope.stream_id)
        if stream != self._stream:
            self._stream, self._expected_version, self._previous = stream, 1, GENESIS_HASH
        self.checked += 1
        self.tally.saw(envelope.stream_hash)
        if envelope.stream_version != self._expected_version:
            self._add(received_seq, service, envelope, "removed",
                      f"expected version {self._expected_version}, found {envelope.stream_version}")
        elif (verdict := self.chain.check(envelope.stream_hash,
                                          envelope.chain_parts(self._previous))) != "ok":
            self.tally.found(verdict)
            self._add(received_seq, service, envelope, verdict, _DETAIL[verdict])
        self._previous = envelope.stream_hash or ""
        self._expected_version = envelope.stream_version + 1

    def _add(self, received_seq: int, service: str, envelope: Envelope, kind: str,
             detail: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(ArchiveProblem(received_seq, service, envelope.stream_id,
                                                envelope.stream_version, kind, detail))

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        first_bad = min((p.received_seq for p in self.problems), default=None)
        result: dict[str, Any] = {"ok": self.ok, "checked": self.checked, "first_bad": first_bad,
                                  **self.tally.as_dict()}
        if self.problems:
            result["problems"] = [
                {"received_seq": p.received_seq, "service": p.service, "stream_id": p.stream_id,
                 "stream_version": p.stream_version, "kind": p.kind, "detail": p.detail}
                for p in sorted(self.problems, key=lambda p: p.received_seq)
            ]
        return result
