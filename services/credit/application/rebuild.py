"""Rebuild credit's read models from its own store: ``o2c replay --service credit``.

Each account stream is folded again with ``apply`` (every fact kept, not only the
live ones ``evolve`` keeps); the invoices, payments, credit notes and order reviews of its
final state are written by the same body functions as the commands (``read_models``). The copies of other
services' facts (orders, partners) are not derived from this store and are
kept; the orders they mark cancelled are read as the commands read them.
"""

from __future__ import annotations

from libs.runtime.documents import Documents
from libs.runtime.rebuild import StreamReadModels, rebuilder
from services.credit.application import read_models as rm
from services.credit.application.copies import cancelled_orders
from services.credit.domain.account import STREAM_TYPE, Account, apply


async def _write_account(docs: Documents, state: Account, version: int) -> None:
    partner = state.partner_id
    cancelled = await cancelled_orders(docs.conn, partner)
    for invoice_id, invoice in state.invoices.items():
        docs.put(rm.INVOICE, invoice_id, rm.invoice_body(partner, invoice), partner_id=partner,
                 status=invoice.status, ref_id=invoice.dispatch_id)
    for order_id, order in state.orders.items():
        docs.put(rm.REVIEW, order_id, rm.review_body(state, order, cancelled), partner_id=partner,
                 status=rm.review_status(order, cancelled))
    for payment_id, receipt in state.payments.items():
        docs.put(rm.PAYMENT, payment_id, rm.payment_body(partner, receipt), partner_id=partner)
    for note_id, note in state.credit_notes.items():
        docs.put(rm.CREDIT_NOTE, note_id, rm.credit_note_body(partner, note), partner_id=partner,
                 ref_id=note.source_ref)
    for note_id, debit in state.debit_notes.items():
        docs.put(rm.DEBIT_NOTE, note_id, rm.debit_note_body(partner, debit), partner_id=partner,
                 status=debit.status, ref_id=debit.source_ref)
    for write_off_id, write_off in state.write_offs.items():
        docs.put(rm.WRITE_OFF, write_off_id, rm.write_off_body(partner, write_off), partner_id=partner,
                 status=write_off.status)


MODELS = (StreamReadModels(STREAM_TYPE, lambda stream_id: Account(),
                           lambda state, envelope, event: apply(state, event), _write_account),)


rebuild_read_models = rebuilder((rm.INVOICE, rm.PAYMENT, rm.CREDIT_NOTE, rm.DEBIT_NOTE, rm.WRITE_OFF,
                                 rm.REVIEW), MODELS)
"""Forget credit's documents and write them again from the account streams; events folded."""
