"""Webhooks for distributors: which events are pushed, how a push is signed, when it is retried.

A partner registers an endpoint and a secret; the partner's own order status
changes, invoices, credit notes, debit notes and settlements are pushed to it as
JSON. Each push names the source event's id (``id``), the same on every retry and
redelivery, so a receiver deduplicates on it: delivery is at least once.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from libs.events import credit, rebates
from libs.events.base import DomainEvent
from services.projections.domain.read_models import ORDER_STATUS_AFTER

WebhookType = Literal["order.status_changed", "invoice.issued", "invoice.paid", "credit_note.issued",
                      "debit_note.issued", "debit_note.settled", "settlement.approved"]
"""The stable webhook event types a partner subscribes to (``events`` of a registration)."""

WEBHOOK_TYPES: tuple[str, ...] = get_args(WebhookType)

ORDER_STATUS_CHANGED = "order.status_changed"

WEBHOOK_TYPE_OF: Mapping[str, str] = {
    **dict.fromkeys(ORDER_STATUS_AFTER, ORDER_STATUS_CHANGED),
    credit.InvoiceIssued.TYPE: "invoice.issued",
    credit.InvoicePaid.TYPE: "invoice.paid",
    credit.CreditNoteIssued.TYPE: "credit_note.issued",
    credit.DebitNoteIssued.TYPE: "debit_note.issued",
    credit.DebitNoteSettled.TYPE: "debit_note.settled",
    rebates.SettlementApproved.TYPE: "settlement.approved",
}
"""Source event type -> the stable webhook event type a receiver subscribes to."""
SIGNATURE_HEADER = "O2C-Signature"


def webhook_data(event: DomainEvent) -> dict[str, Any]:
    """The ``data`` of a push: the source event's fields, and the order's new ``status``."""
    data = event.payload()
    status = ORDER_STATUS_AFTER.get(event.TYPE)
    if status is not None:
        data["status"] = status
    return data


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``O2C-Signature`` header: HMAC-SHA256 of ``"<timestamp>." + body`` under the secret."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter on the upper half: attempt n waits about
    ``base * 2**(n-1)`` seconds, at most ``cap``; attempts go on until ``window`` seconds
    after the delivery was (re)queued, then the delivery is marked failed."""

    base_seconds: float = 10.0
    cap_seconds: float = 3600.0
    window_seconds: float = 25 * 3600.0

    def delay(self, attempts: int, rand: random.Random | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** min(max(attempts - 1, 0), 40))
        return ceiling / 2 + (rand or random).random() * ceiling / 2


def url_problem(url: str, *, allow_loopback_http: bool) -> str | None:
    """Why ``url`` is no endpoint we push to (None: it is one).

    HTTPS only; plain HTTP only to a loopback host (``localhost``, 127.0.0.0/8, ``::1``)
    and only where the service allows it (development and tests). An address written
    as an IP must be a public one (no 10.x, 169.254.x, 127.x, ...), loopback aside where
    plain HTTP to it is allowed."""
    if any(char.isspace() for char in url):
        return "must not contain spaces"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a valid URL"
    host = parts.hostname
    if not host or parts.scheme not in ("https", "http"):
        return "must be an https:// URL with a host"
    if _address(host) is None and not _HOST_NAME.fullmatch(host):
        return "the host must be a DNS name (letters, digits, hyphens; IDNA in its xn-- form)"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials"
    if parts.fragment:
        return "must not have a fragment"
    if port == 0:
        return "port 0 is not a port"
    if parts.scheme == "http":
        if not allow_loopback_http:
            return "must use https"
        if not _is_loopback(host):
            return "plain http is allowed only to a loopback host"
        return None
    address = _address(host)
    if address is not None and not address.is_global and not (allow_loopback_http and address.is_loopback):
        return "must not name a private, loopback or reserved address"
    return None


_HOST_NAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?")


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_loopback(host: str) -> bool:
    address = _address(host)
    return host == "localhost" or (address is not None and address.is_loopback)
