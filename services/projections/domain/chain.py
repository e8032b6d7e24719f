"""Verifying the archive's copy of every stream's hash chain.

Each archived envelope keeps the stream hash its publisher computed. Walking a
stream in version order from the genesis hash, every event must follow its
predecessor's version by one and hash to the stored value; an edited row, a
removed one or a rewritten hash breaks the walk at that row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from libs.events.envelope import GENESIS_HASH, Envelope

MAX_PROBLEMS = 100


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

    checked: int = 0
    problems: list[ArchiveProblem] = field(default_factory=list)
    _stream: tuple[str, str] | None = None
    _expected_version: int = 1
    _previous: str = GENESIS_HASH

    def feed(self, received_seq: int, service: str, envelope: Envelope) -> None:
        stream = (service, envelope.stream_id)
        if stream != self._stream:
            self._stream, self._expected_version, self._previous = stream, 1, GENESIS_HASH
        self.checked += 1
        if envelope.stream_version != self._expected_version:
            self._add(received_seq, service, envelope, "removed",
                      f"expected version {self._expected_version}, found {envelope.stream_version}")
        elif envelope.chained_hash(self._previous) != envelope.stream_hash:
            self._add(received_seq, service, envelope, "altered", "hash does not match its content")
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
        result: dict[str, Any] = {"ok": self.ok, "checked": self.checked, "first_bad": first_bad}
        if self.problems:
            result["problems"] = [
                {"received_seq": p.received_seq, "service": p.service, "stream_id": p.stream_id,
                 "stream_version": p.stream_version, "kind": p.kind, "detail": p.detail}
                for p in sorted(self.problems, key=lambda p: p.received_seq)
            ]
        return result
