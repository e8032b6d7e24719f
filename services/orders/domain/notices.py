"""Price-change notices: a price-list version announced to the tier's partners before it applies.

- A version takes effect no sooner than ``notice_days`` (a setting, 7 by default)
  after it is published, unless sales gives an ``override_reason``, which the
  version records (422 ``short-notice`` without one).
- A version that takes effect later than today sends one notice to every
  partner of its tier that has not been terminated; each partner
  acknowledges its own notice once (a repeat changes nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date

from libs.events.base import DomainEvent
from libs.events.orders import PriceChangeAcknowledged, PriceChangeNotified
from services.orders.domain.errors import NoticeNotFound, ShortNotice

NOTICE_DAYS = 7
NOTIFIED_STATUSES = ("applied", "trial", "active", "suspended")
"""Every partner of the tier except a terminated one."""


def check_notice(effective_from: date, today: date, notice_days: int, override_reason: str | None) -> None:
    """Less than ``notice_days`` before ``effective_from`` needs an override reason."""
    given = (effective_from - today).days
    if given < notice_days and not override_reason:
        raise ShortNotice(
            f"the version takes effect in {given} day(s); at least {notice_days} days' notice is "
            "required unless an override_reason is given",
            notice_days=notice_days, days_given=given)


def needs_notice(effective_from: date, today: date) -> bool:
    """Only a version that takes effect later than today is announced."""
    return effective_from > today


@dataclass(frozen=True)
class Notice:
    """``notice_id`` is ``""`` while the notice does not exist."""

    notice_id: str = ""
    partner_id: str = ""
    tier: str = ""
    version: int = 0
    effective_from: date | None = None
    acknowledged: bool = False


def evolve_notice(notice: Notice, event: DomainEvent) -> Notice:
    if isinstance(event, PriceChangeNotified):
        return Notice(event.notice_id, event.partner_id, event.tier, event.version, event.effective_from)
    if isinstance(event, PriceChangeAcknowledged):
        return replace(notice, acknowledged=True)
    return notice


def decide_notify(tier: str, version: int, effective_from: date,
                  partners: Iterable[tuple[str, str]]) -> list[PriceChangeNotified]:
    """One notice per ``(notice_id, partner_id)``: the partners of the tier to notify."""
    return [PriceChangeNotified(notice_id=notice_id, partner_id=partner_id, tier=tier,
                                version=version, effective_from=effective_from)
            for notice_id, partner_id in partners]


def decide_acknowledge(notice: Notice, partner_id: str | None) -> list[PriceChangeAcknowledged]:
    """The notice's own partner acknowledges it (another partner's notice is not found)."""
    if not notice.notice_id or notice.partner_id != partner_id:
        raise NoticeNotFound("no such price notice")
    if notice.acknowledged:
        return []
    return [PriceChangeAcknowledged(notice_id=notice.notice_id, partner_id=notice.partner_id,
                                    tier=notice.tier, version=notice.version)]
