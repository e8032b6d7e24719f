"""Credit's refusals; each maps to a problem type at the HTTP boundary."""

from __future__ import annotations

from libs.runtime.errors import Conflict, DomainError, Forbidden, NotFound


class AccountNotFound(NotFound):
    def __init__(self, partner_id: str) -> None:
        super().__init__(f"no account for partner {partner_id!r}", slug="account-not-found")


class OrderNotFound(NotFound):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"no order {order_id!r} is known to credit", slug="order-not-found")


class InvoiceNotFound(NotFound):
    def __init__(self, invoice_id: str) -> None:
        super().__init__(f"no invoice {invoice_id!r}", slug="invoice-not-found")


class NotOnHold(Conflict):
    """Only a held or awaiting order can be released or rejected."""

    def __init__(self, order_id: str, status: str) -> None:
        super().__init__(f"order {order_id!r} is {status}, not held or awaiting funds",
                         slug="order-not-held")


class PartnerSuspended(Conflict):
    """A suspended partner's orders stay held until it is reinstated; finance may only reject."""

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id!r} is held because its partner is suspended; "
                         "it is reviewed again when the partner is reinstated", slug="partner-suspended")


class InvoiceClosed(Conflict):
    def __init__(self, invoice_id: str, status: str) -> None:
        super().__init__(f"invoice {invoice_id!r} is {status}", slug="invoice-closed")


class DuplicateBankRef(Conflict):
    def __init__(self, bank_ref: str) -> None:
        super().__init__(f"a payment with bank_ref {bank_ref!r} is already recorded",
                         slug="duplicate-bank-ref")


class StatementMismatch(Conflict):
    def __init__(self, expected: int, given: int) -> None:
        super().__init__(f"the closing balance is {expected}, not {given}",
                         slug="statement-mismatch", closing_minor=expected)


class BadAllocation(DomainError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, slug="bad-allocation")


class BadAmount(DomainError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, slug="bad-amount")


class BadTerms(DomainError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, slug="bad-terms")


class CurrencyMismatch(DomainError):
    def __init__(self, given: str, account: str) -> None:
        super().__init__(f"the account is kept in {account}, not {given}", slug="currency-mismatch")


class BadReceiptDate(DomainError):
    """A receipt dated in the future, before the account opened, or further back than allowed."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, slug="bad-received-on")


class WriteOffNotFound(NotFound):
    def __init__(self, write_off_id: str) -> None:
        super().__init__(f"no write-off {write_off_id!r}", slug="write-off-not-found")


class WriteOffNotPending(Conflict):
    def __init__(self, write_off_id: str, status: str) -> None:
        super().__init__(f"write-off {write_off_id!r} is {status}, not proposed", slug="write-off-decided",
                         write_off_status=status)


class WriteOffPending(Conflict):
    def __init__(self, invoice_id: str, write_off_id: str) -> None:
        super().__init__(f"invoice {invoice_id!r} already has write-off {write_off_id!r} awaiting approval; "
                         "approve or reject it first", slug="write-off-pending", write_off_id=write_off_id)


class WriteOffStale(Conflict):
    def __init__(self, write_off_id: str, invoice_id: str, open_minor: int) -> None:
        super().__init__(f"invoice {invoice_id!r} has {open_minor} open now, less than write-off "
                         f"{write_off_id!r} proposes; reject it and propose again", slug="write-off-stale",
                         open_minor=open_minor)


class SameApprover(Forbidden):
    """Four eyes: the key that proposed a write-off may not approve it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, slug="same-approver")
