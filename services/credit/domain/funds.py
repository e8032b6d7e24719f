"""Funds review, holds and terms: the decisions that gate an order's shipment.

Rules:

- prepaid terms: the order passes (``how=prepaid``) when the unreserved advance
  covers its total; that much advance is then reserved for it (``AdvanceApplied``
  with ``order_id``). Otherwise it waits for the money (``OrderAwaitingPrepayment``).
- credit terms: the order passes (``how=within_limit``) when nothing is overdue
  (no open invoice due before today) and exposure + total <= credit limit;
  otherwise it is put on hold with reason ``overdue`` (checked first) or ``over_limit``.
- held and awaiting orders queue in arrival order. A payment, credit note,
  write-off, terms change, cancellation or advance-settled invoice re-evaluates
  the queue: each queued order, oldest first, passes if it fits given the orders
  passed before it (an order that does not fit stays queued; the next may still fit).
- finance may release a queued order (``HoldReleased`` + ``FundsReviewPassed(how=released)``,
  even over the limit: that is finance's call) or reject it (``OrderRejectedByFinance``).
- a suspended partner (``AccountSuspended``) is held: every queued order is re-held with
  reason ``partner_suspended``, an order reaching funds review is held with that reason
  (prepaid or not), nothing passes (re-evaluation passes nothing, finance cannot release,
  only reject). Reinstatement (``AccountReinstated``) re-evaluates the queue in arrival
  order; an order that still does not fit is held again with its own reason (``overdue``,
  ``over_limit``, or awaiting prepayment). Orders approved before the suspension stay
  approved.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from libs.events import credit as ev
from libs.events.base import DomainEvent
from libs.events.values import PaymentTerms
from services.credit.domain.account import Account, fold
from services.credit.domain.errors import BadTerms, NotOnHold, PartnerSuspended
from services.credit.domain.parts import OrderReview
from services.credit.domain.position import NONE, exposure, free_advance, overdue, queue

SYSTEM = "system:credit"
MAX_TERM_DAYS = 3650


@dataclass(frozen=True)
class Verdict:
    passes: bool
    how: str = ""
    hold_reason: str = ""


def decide_open_account(state: Account, partner_id: str, terms: PaymentTerms, currency: str,
                        opened_on: date | None = None) -> list[DomainEvent]:
    """A registered partner gets an account on its agreed terms (prepaid: zero limit and term),
    opened on ``opened_on`` (no receipt may be dated before it)."""
    if state.opened:
        return []
    credit = terms.kind == "credit"
    return [ev.AccountOpened(partner_id=partner_id, kind=terms.kind,
                             credit_limit_minor=max(terms.credit_limit_minor or 0, 0) if credit else 0,
                             term_days=max(terms.term_days or 0, 0) if credit else 0, currency=currency,
                             opened_on=opened_on)]


def assess(state: Account, total: int, today: date, cancelled: Collection[str] = NONE) -> Verdict:
    """Would an order of ``total`` pass funds review now?"""
    if state.suspended:
        return Verdict(False, hold_reason="partner_suspended")
    if state.kind == "prepaid":
        return Verdict(True, how="prepaid") if free_advance(state, cancelled) >= total else Verdict(False)
    if overdue(state, today) > 0:
        return Verdict(False, hold_reason="overdue")
    if exposure(state, cancelled) + total > state.credit_limit_minor:
        return Verdict(False, hold_reason="over_limit")
    return Verdict(True, how="within_limit")


def _passed(state: Account, order_id: str, total: int, how: str) -> list[DomainEvent]:
    """The order passes; a prepaid one then has its total reserved from the advance."""
    events: list[DomainEvent] = [ev.FundsReviewPassed(
        order_id=order_id, partner_id=state.partner_id, amount_minor=total, currency=state.currency,
        how=how)]
    if how == "prepaid":
        events.append(ev.AdvanceApplied(partner_id=state.partner_id, order_id=order_id,
                                        amount_minor=total, currency=state.currency))
    return events


def decide_funds_review(state: Account, order_id: str, total: int, today: date,
                        cancelled: Collection[str] = NONE, *, reviewed: bool = False) -> list[DomainEvent]:
    """Review a confirmed order once; a second review of the same order decides nothing.

    ``reviewed``: the order was reviewed already and has left the account since (its review
    document says so; the account keeps only live orders)."""
    if reviewed or order_id in state.orders or order_id in cancelled:
        return []
    verdict = assess(state, total, today, cancelled)
    if verdict.passes:
        return _passed(state, order_id, total, verdict.how)
    return _not_passed(state, order_id, total, verdict)


def _not_passed(state: Account, order_id: str, total: int, verdict: Verdict) -> list[DomainEvent]:
    """Awaiting prepayment, or on hold with the verdict's reason (always on hold when suspended)."""
    if state.kind == "prepaid" and not verdict.hold_reason:
        return [ev.OrderAwaitingPrepayment(order_id=order_id, partner_id=state.partner_id,
                                           amount_minor=total, currency=state.currency)]
    return [ev.OrderPutOnHold(order_id=order_id, partner_id=state.partner_id, amount_minor=total,
                              currency=state.currency, reason=verdict.hold_reason)]


def decide_reevaluation(state: Account, today: date, reason: str,
                        cancelled: Collection[str] = NONE) -> list[DomainEvent]:
    """Pass every queued order that now fits, oldest first, each counting the ones before it."""
    events: list[DomainEvent] = []
    for order in queue(state, cancelled):
        verdict = assess(state, order.total_minor, today, cancelled)
        if not verdict.passes:
            continue
        passed: list[DomainEvent] = []
        if order.status == "held":
            passed.append(ev.HoldReleased(order_id=order.order_id, partner_id=state.partner_id,
                                          reason=reason, released_by=SYSTEM))
        passed += _passed(state, order.order_id, order.total_minor, verdict.how)
        events += passed
        state = fold(state, passed)
    return events


def decide_suspend(state: Account, reason: str, cancelled: Collection[str] = NONE) -> list[DomainEvent]:
    """Hold the partner: every queued order is held with reason ``partner_suspended``."""
    if not state.opened or state.suspended:
        return []
    return [ev.AccountSuspended(partner_id=state.partner_id, reason=reason), *(
        ev.OrderPutOnHold(order_id=order.order_id, partner_id=state.partner_id,
                          amount_minor=order.total_minor, currency=state.currency,
                          reason="partner_suspended")
        for order in queue(state, cancelled))]


def decide_reinstate(state: Account, today: date, cancelled: Collection[str] = NONE) -> list[DomainEvent]:
    """Review the held orders again, oldest first; those that still do not fit are held again
    with their own reason."""
    if not state.suspended:
        return []
    events: list[DomainEvent] = [ev.AccountReinstated(partner_id=state.partner_id)]
    state = fold(state, events)
    passed = decide_reevaluation(state, today, "partner reinstated", cancelled)
    events += passed
    state = fold(state, passed)
    for order in queue(state, cancelled):
        if order.hold_reason == "partner_suspended" and order.status == "held":
            events += _not_passed(state, order.order_id, order.total_minor,
                                  assess(state, order.total_minor, today, cancelled))
    return events


def _queued(state: Account, order_id: str, cancelled: Collection[str]) -> OrderReview:
    order = state.orders.get(order_id)
    if order is None:
        raise NotOnHold(order_id, "not reviewed yet")
    if order_id in cancelled:
        raise NotOnHold(order_id, "cancelled")
    if order.status not in ("held", "awaiting_prepayment"):
        raise NotOnHold(order_id, order.status)
    return order


def decide_release(state: Account, order_id: str, reason: str, actor: str,
                   cancelled: Collection[str] = NONE) -> list[DomainEvent]:
    """Finance releases a queued order, even over the limit; never while the partner is suspended."""
    order = _queued(state, order_id, cancelled)
    if state.suspended:
        raise PartnerSuspended(order_id)
    return [
        ev.HoldReleased(order_id=order_id, partner_id=state.partner_id, reason=reason, released_by=actor),
        ev.FundsReviewPassed(order_id=order_id, partner_id=state.partner_id, amount_minor=order.total_minor,
                             currency=state.currency, how="released"),
    ]


def decide_reject(state: Account, order_id: str, reason: str, actor: str,
                  cancelled: Collection[str] = NONE) -> list[DomainEvent]:
    _queued(state, order_id, cancelled)
    return [ev.OrderRejectedByFinance(order_id=order_id, partner_id=state.partner_id, reason=reason,
                                      rejected_by=actor)]


def decide_terms(state: Account, kind: str, credit_limit_minor: int | None, term_days: int | None,
                 today: date, cancelled: Collection[str] = NONE) -> list[DomainEvent]:
    """Change terms (prepaid: zero limit and term), then re-evaluate the queue.

    Credit terms keep the current limit or term when one is not given, except when
    switching from prepaid, which must name both. Unchanged terms decide nothing.
    """
    if kind == "prepaid":
        if credit_limit_minor or term_days:
            raise BadTerms("prepaid terms have no credit limit and no term")
        limit, term = 0, 0
    else:
        if state.kind == "prepaid" and (credit_limit_minor is None or term_days is None):
            raise BadTerms("credit terms need credit_limit_minor and term_days")
        limit = state.credit_limit_minor if credit_limit_minor is None else credit_limit_minor
        term = state.term_days if term_days is None else term_days
    if limit < 0 or not 0 <= term <= MAX_TERM_DAYS:
        raise BadTerms(f"credit_limit_minor must be >= 0 and term_days within 0..{MAX_TERM_DAYS}")
    if (kind, limit, term) == (state.kind, state.credit_limit_minor, state.term_days):
        return []
    changed: list[DomainEvent] = [ev.TermsChanged(partner_id=state.partner_id, kind=kind,
                                                  credit_limit_minor=limit, term_days=term,
                                                  currency=state.currency)]
    return changed + decide_reevaluation(fold(state, changed), today, "terms changed", cancelled)
