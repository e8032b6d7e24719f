"""The problems partner and key rules raise; mapped to problem+json by ``libs.runtime.http``."""

from __future__ import annotations

from libs.runtime.errors import Conflict, DomainError, NotFound


class PartnerNotFound(NotFound):
    slug = "partner-not-found"

    def __init__(self, partner_id: str) -> None:
        super().__init__(f"no partner {partner_id!r}")


class KeyNotFound(NotFound):
    slug = "key-not-found"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no API key {key_id!r}")


class DuplicateLegalId(Conflict):
    slug = "duplicate-legal-id"

    def __init__(self, legal_id: str) -> None:
        super().__init__(f"a partner with legal id {legal_id!r} is already registered")


class TransitionRefused(Conflict):
    """The partner's lifecycle status does not allow this action (409, names ``partner_status``)."""

    title = "Not allowed in the partner's current status"

    def __init__(self, detail: str, *, slug: str, status: str) -> None:
        super().__init__(detail, slug=slug, partner_status=status)


class InvalidField(DomainError):
    """A rule across fields refused the input (422); ``errors`` lists each bad field."""

    title = "Invalid request"

    def __init__(self, field: str, message: str, *, slug: str) -> None:
        super().__init__(f"{field}: {message}", slug=slug,
                         errors=[{"field": field, "message": message, "type": slug}])
