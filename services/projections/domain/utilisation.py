"""Credit utilisation and days sales outstanding (DSO), per partner at the end of a day.

At the end of ``as_of``, over the period ``from..as_of`` (default the 90 days
ending ``as_of``):

- ``exposure_minor`` = open invoice and debit note amounts + approved orders
  not yet invoiced, as the credit service counts it (``partner_view``);
- ``utilisation_bp`` = exposure / credit limit x 10000, half-up (null on
  prepaid terms or a zero limit); ``available_minor`` = max(limit - exposure, 0)
  on credit terms;
- ``receivables_minor`` = open invoice and debit note amounts at ``as_of``;
- ``invoiced_minor`` = invoices issued in the period (debit notes are no sales);
- ``dso_days`` = receivables / invoiced x days in the period, half-up to whole
  days (null when nothing was invoiced): how many days of the period's sales
  are still unpaid. Example: 30 000.00 open after 90 days that invoiced
  90 000.00 gives 30 days.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from libs.events.values import half_up
from services.projections.domain.partner_view import approved_not_invoiced
from services.projections.domain.periods import Period
from services.projections.domain.receivables import open_minor
from services.projections.domain.scorecards import ratio_bp

Doc = dict[str, Any]


def utilisation(terms: Doc | None, *, orders: Sequence[Doc], invoices: Sequence[Doc],
                debit_notes: Sequence[Doc], period: Period) -> dict[str, Any]:
    """One partner's utilisation and DSO; money documents as they stood at ``period.end``."""
    receivables = sum(open_minor(doc) for doc in [*invoices, *debit_notes])
    exposure = receivables + approved_not_invoiced(orders, invoices)
    invoiced = sum(i["total_minor"] for i in invoices
                   if i["total_minor"] is not None and period.holds(i["issued_on"]))
    on_credit = terms is not None and terms["kind"] == "credit"
    limit = terms["credit_limit_minor"] if terms else 0
    return {
        "terms": terms["kind"] if terms else None, "credit_limit_minor": limit,
        "term_days": terms["term_days"] if terms else None,
        "exposure_minor": exposure,
        "available_minor": max(limit - exposure, 0) if on_credit else None,
        "utilisation_bp": ratio_bp(exposure, limit) if on_credit else None,
        "receivables_minor": receivables, "invoiced_minor": invoiced, "days": period.days,
        "dso_days": half_up(receivables * period.days, invoiced) if invoiced > 0 else None,
    }
