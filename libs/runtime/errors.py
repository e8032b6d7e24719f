"""Domain errors, mapped to RFC 9457 problem+json in one place (``libs.runtime.http``).

Domain code raises these (never ``HTTPException``); each carries its HTTP
status and a problem type slug.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule refused the command. ``slug`` names the problem type."""

    status = 422
    slug = "unprocessable"
    title = "The request breaks a business rule"

    def __init__(self, detail: str, *, slug: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if slug is not None:
            self.slug = slug
        reserved = {"type", "title", "status", "detail"} & extra.keys()
        if reserved:
            raise ValueError(f"problem fields {sorted(reserved)} are reserved")
        self.extra = extra


class NotFound(DomainError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    slug = "conflict"
    title = "Conflict with the current state"


class Forbidden(DomainError):
    status = 403
    slug = "forbidden"
    title = "Not allowed"


class Unauthorized(DomainError):
    status = 401
    slug = "unauthorized"
    title = "Missing, unknown or revoked key"
