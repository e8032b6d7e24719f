"""Rebuild the rebates' read models from their own store: ``o2c replay --service rebates``.

Program documents are folded again from the program streams, accrual
documents from the rebate streams, with the same body functions as the
commands (``views``). Settlement and co-op claim documents are rewritten in place rather than
forgotten: the credit note that paid a settlement (or claim) comes from credit's events,
not from this store, so it is kept from the stored document, like its version
while its status has not changed (``views.write_rebate`` writes a settlement
only when its status changes). The copies of other services' facts are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy import select

from libs.events.base import DomainEvent
from libs.events.envelope import Envelope
from libs.runtime.documents import Documents
from libs.runtime.rebuild import StreamReadModels, rebuilder
from libs.store.schema import documents
from services.rebates.application import programs, rebates, views
from services.rebates.domain import program, rebate
from services.rebates.domain.program import ProgramState
from services.rebates.domain.rebate import RebateState


def _write_program(docs: Documents, state: ProgramState, version: int) -> None:
    if state.definition is not None:
        body = views.program_body(state)
        docs.put(views.PROGRAM, body["id"], body, status=state.status, version=version)


@dataclass(frozen=True)
class _Rebate:
    state: RebateState | None = None
    status_set_at: dict[str, int] = field(default_factory=dict)
    """Settlement or co-op claim id -> the stream version at which its status last changed."""


def _fold_rebate(held: _Rebate, envelope: Envelope, event: DomainEvent) -> _Rebate:
    before = held.state or RebateState(event.program_id, event.partner_id)  # type: ignore[attr-defined]
    after = rebate.evolve(before, event)
    statuses = {s.settlement_id: s.status for s in before.settlements}
    statuses |= {c.claim_id: c.status for c in before.fund.claims}
    now = [(s.settlement_id, s.status) for s in after.settlements]
    now += [(c.claim_id, c.status) for c in after.fund.claims]
    changed = {doc_id: envelope.stream_version for doc_id, status in now if statuses.get(doc_id) != status}
    return replace(held, state=after, status_set_at={**held.status_set_at, **changed})


async def _stored_versions(docs: Documents, kind: str, doc_ids: list[str]) -> dict[str, int]:
    if not doc_ids:
        return {}
    rows = await docs.conn.execute(select(documents.c.id, documents.c.version).where(
        documents.c.kind == kind, documents.c.id.in_(doc_ids)))
    return {doc_id: version for doc_id, version in rows.all()}


async def _write_rebate(docs: Documents, held: _Rebate, version: int) -> None:
    state = held.state
    if state is None:
        return
    docs.put(views.ACCRUAL, views.accrual_id(state.program_id, state.partner_id), views.accrual_body(state),
             partner_id=state.partner_id, version=version, ref_id=state.program_id)
    versions = await _stored_versions(docs, views.SETTLEMENT, [s.settlement_id for s in state.settlements])
    for settlement in state.settlements:
        body = views.settlement_body(state, settlement)
        stored = await docs.get(views.SETTLEMENT, settlement.settlement_id)
        version = held.status_set_at[settlement.settlement_id]
        if stored is not None:
            body["credit_note_id"] = stored.get("credit_note_id")
            if stored["status"] == settlement.status:
                version = versions[settlement.settlement_id]
        docs.put(views.SETTLEMENT, settlement.settlement_id, body, partner_id=state.partner_id,
                 status=settlement.status, version=version, ref_id=state.program_id)
    versions = await _stored_versions(docs, views.CLAIM, [c.claim_id for c in state.fund.claims])
    for claim in state.fund.claims:
        body = views.claim_body(state, claim)
        stored = await docs.get(views.CLAIM, claim.claim_id)
        version = held.status_set_at[claim.claim_id]
        if stored is not None:
            body["credit_note_id"] = stored.get("credit_note_id")
            if stored["status"] == claim.status:
                version = versions[claim.claim_id]
        docs.put(views.CLAIM, claim.claim_id, body, partner_id=state.partner_id, status=claim.status,
                 version=version, ref_id=state.program_id)


MODELS = (
    StreamReadModels(programs.STREAM_TYPE, lambda stream_id: ProgramState(),
                     lambda state, envelope, event: program.evolve(state, event), _write_program),
    StreamReadModels(rebates.STREAM_TYPE, lambda stream_id: _Rebate(), _fold_rebate, _write_rebate),
)


rebuild_read_models = rebuilder((views.PROGRAM, views.ACCRUAL), MODELS)
"""Forget program and accrual documents, write them and the settlements again; events folded."""
