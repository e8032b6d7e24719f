"""The API-key aggregate: issued once (only the secret's sha256 is recorded), revoked for good.

A ``partner`` key is bound to one existing partner; staff keys are bound to
none. Revoking a revoked key changes nothing (the HTTP call stays 204).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from libs.events.base import DomainEvent
from libs.events.partners import KeyIssued, KeyRevoked
from libs.runtime.auth import ALL_ROLES
from services.partners.domain.commands import IssueKey
from services.partners.domain.errors import InvalidField, KeyNotFound


@dataclass(frozen=True)
class ApiKey:
    key_id: str = ""
    role: str = ""
    partner_id: str | None = None
    name: str | None = None
    revoked: bool = False

    @property
    def exists(self) -> bool:
        return bool(self.role)


def evolve(state: ApiKey, event: DomainEvent) -> ApiKey:
    match event:
        case KeyIssued():
            return ApiKey(key_id=event.key_id, role=event.role, partner_id=event.partner_id,
                          name=event.name)
        case KeyRevoked():
            return replace(state, revoked=True)
    return state


def decide_issue(command: IssueKey, *, partner_exists: bool) -> list[DomainEvent]:
    """A partner key needs an existing ``partner_id``; a staff key must not carry one."""
    if command.role not in ALL_ROLES:
        raise InvalidField("role", f"must be one of {', '.join(ALL_ROLES)}", slug="invalid-role")
    if command.role == "partner":
        if command.partner_id is None:
            raise InvalidField("partner_id", "a partner key needs a partner_id",
                               slug="partner-id-required")
        if not partner_exists:
            raise InvalidField("partner_id", f"no partner {command.partner_id!r}",
                               slug="unknown-partner")
    elif command.partner_id is not None:
        raise InvalidField("partner_id", "a staff key is bound to no partner",
                           slug="partner-id-not-allowed")
    return [KeyIssued(key_id=command.key_id, role=command.role, partner_id=command.partner_id,
                      name=command.name, secret_sha256=command.secret_sha256)]


def decide_revoke(state: ApiKey, key_id: str) -> list[DomainEvent]:
    """Revoke a key; a key already revoked stays revoked and nothing is appended."""
    if not state.exists:
        raise KeyNotFound(key_id)
    if state.revoked:
        return []
    return [KeyRevoked(key_id=key_id)]
