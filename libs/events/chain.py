"""Links of the tamper-evident chains: unkeyed sha256, or HMAC-SHA256 under a key id.

Every event's ``stream_hash`` and every relay seal is a *link*: a digest over
the previous link and the new content. A link is stored as text:

- **keyed**: ``<key id>:<base64url HMAC-SHA256(key, "<key id>|" + message)>``,
  46 characters for a two-character key id. Only a holder of the key can
  compute it, so someone with write access to the database alone cannot forge
  an event, rewrite a stream or recompute the seals. The key id says which key
  signed, so keys can be rotated: the first configured key signs, every
  configured key verifies, and old links stay valid under their old key.
- **unkeyed**: 64 hex digits of sha256(message), the public formula. It finds
  accidental damage and naive edits, never a forger who recomputes it.

Once keys are configured, an unkeyed link is itself a finding ("unkeyed"):
either it predates the key, or someone replaced keyed links with public ones
(a downgrade). A link under a key id that is not configured cannot be checked
("unknown-key"). Both forms fit the stores' 64-character hash columns.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
MIN_SECRET_CHARS = 32
_UNKEYED = re.compile(r"[0-9a-f]{64}")

Verdict = Literal["ok", "altered", "unkeyed", "unknown-key"]


class AuditKeyError(ValueError):
    """The configured audit keys cannot be used (the message says why, never the secret)."""


@dataclass(frozen=True, slots=True)
class AuditKey:
    key_id: str
    secret: bytes = field(repr=False)


def parse_audit_keys(text: str) -> list[AuditKey]:
    """``"k2:<secret>,k1:<secret>"`` (commas or new lines; blank lines and ``#`` comments skipped).

    The first key signs new links; all of them verify. Fails fast on a bad key id,
    a secret shorter than 32 characters or a key id given twice.
    """
    keys: list[AuditKey] = []
    for entry in re.split(r"[,\n]", text):
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        key_id, colon, secret = entry.partition(":")
        if not colon or not KEY_ID.fullmatch(key_id):
            raise AuditKeyError("an audit key is written <key id>:<secret>, the key id being "
                                "1-16 letters, digits, '-' or '_'")
        if len(secret.strip()) < MIN_SECRET_CHARS:
            raise AuditKeyError(f"audit key {key_id}: the secret needs at least "
                                f"{MIN_SECRET_CHARS} characters")
        if any(k.key_id == key_id for k in keys):
            raise AuditKeyError(f"audit key {key_id} is given twice")
        keys.append(AuditKey(key_id, secret.strip().encode("utf-8")))
    return keys


class Chain:
    """Computes and checks links; built once per process (the HMAC key schedules are kept).

    ``Chain()`` is the unkeyed chain; ``Chain(keys)`` signs with ``keys[0]``.
    """

    def __init__(self, keys: Sequence[AuditKey] = ()) -> None:
        self._macs = {key.key_id: hmac.new(key.secret, f"{key.key_id}|".encode("ascii"),
                                           hashlib.sha256) for key in keys}
        self.key_ids: tuple[str, ...] = tuple(key.key_id for key in keys)
        self.signing_key: str | None = self.key_ids[0] if keys else None

    @property
    def keyed(self) -> bool:
        return self.signing_key is not None

    @property
    def mode(self) -> Literal["keyed", "unkeyed"]:
        return "keyed" if self.keyed else "unkeyed"

    def sign(self, parts: Iterable[bytes]) -> str:
        """The link over ``parts`` (concatenated), under the signing key if there is one."""
        if self.signing_key is None:
            return _sha256(parts)
        return _keyed(self.signing_key, self._macs[self.signing_key], parts)

    def check(self, link: str | None, parts: Iterable[bytes]) -> Verdict:
        """Whether ``link`` is the right link over ``parts`` (see the module doc)."""
        if link is None:
            return "altered"
        key_id, colon, _ = link.partition(":")
        if not colon:
            if self.keyed:
                return "unkeyed"
            return "ok" if _UNKEYED.fullmatch(link) and _sha256(parts) == link else "altered"
        mac = self._macs.get(key_id)
        if mac is None:
            return "unknown-key"
        return "ok" if hmac.compare_digest(_keyed(key_id, mac, parts), link) else "altered"

    @staticmethod
    def key_of(link: str | None) -> str:
        """The key id a link claims (``"unkeyed"`` for the public formula)."""
        key_id, colon, _ = (link or "").partition(":")
        return key_id if colon else "unkeyed"


UNKEYED = Chain()
"""The public formula: what every store used before keys, and what runs without one."""

_WARNINGS = {
    "unkeyed-mode": "no audit key is configured (O2C_AUDIT_KEYS or the audit-key file): the "
                    "chains use the public sha256 formula, which finds accidental damage and "
                    "naive edits but not someone with database access who recomputes them",
    "unkeyed": "{n} links carry no key although keys are configured: written before the key "
               "was, or keyed links replaced by public ones (a downgrade)",
    "unknown-key": "{n} links are under key ids that are not configured (seen: {ids}): "
                   "configure every key that ever signed (the first one signs, all verify)",
}


@dataclass
class LinkTally:
    """What a walk over links saw: links per key id, findings per verdict, and the warnings."""

    mode: str
    links: dict[str, int] = field(default_factory=dict)
    findings: dict[str, int] = field(default_factory=dict)

    def saw(self, link: str | None) -> None:
        key_id = Chain.key_of(link)
        self.links[key_id] = self.links.get(key_id, 0) + 1

    def found(self, verdict: Verdict) -> None:
        self.findings[verdict] = self.findings.get(verdict, 0) + 1

    def warnings(self) -> list[str]:
        said = [_WARNINGS["unkeyed-mode"]] if self.mode == "unkeyed" else []
        if unkeyed := self.findings.get("unkeyed", 0):
            said.append(_WARNINGS["unkeyed"].format(n=unkeyed))
        if unknown := self.findings.get("unknown-key", 0):
            ids = ", ".join(sorted(k for k in self.links if k != "unkeyed"))
            said.append(_WARNINGS["unknown-key"].format(n=unknown, ids=ids))
        return said

    def as_dict(self) -> dict[str, object]:
        """``{mode, links, warnings?}``, merged into a verification report."""
        result: dict[str, object] = {"mode": self.mode, "links": dict(sorted(self.links.items()))}
        if warnings := self.warnings():
            result["warnings"] = warnings
        return result


def _sha256(parts: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def _keyed(key_id: str, base: hmac.HMAC, parts: Iterable[bytes]) -> str:
    mac = base.copy()
    for part in parts:
        mac.update(part)
    return f"{key_id}:{base64.urlsafe_b64encode(mac.digest()).rstrip(b'=').decode('ascii')}"
