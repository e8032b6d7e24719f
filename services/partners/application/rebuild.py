"""Rebuild the partners' read models from their own store: ``o2c replay --service partners``.

The partner documents and the key documents are folded again from the
partner and key streams, written by the same body functions as the commands
(``read_models``). Violations (recorded from orders' events) and legal-id
claims are not derived from this store and are kept as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from libs.events.base import DomainEvent
from libs.events.envelope import Envelope
from libs.events.partners import KeyIssued, KeyRevoked
from libs.runtime.documents import Documents
from libs.runtime.rebuild import StreamReadModels, rebuilder
from services.partners.application import keys, partners
from services.partners.application.read_models import KEY, PARTNER, key_body, partner_body
from services.partners.domain import key, partner
from services.partners.domain.key import ApiKey
from services.partners.domain.partner import Partner


def _write_partner(docs: Documents, state: Partner, version: int) -> None:
    docs.put(PARTNER, state.id, partner_body(state), partner_id=state.id, status=state.status,
             version=version, ref_id=state.parent_id)


@dataclass(frozen=True)
class _Key:
    state: ApiKey = field(default_factory=ApiKey)
    issued_at: str = ""
    revoked_at: str | None = None


def _fold_key(held: _Key, envelope: Envelope, event: DomainEvent) -> _Key:
    held = replace(held, state=key.evolve(held.state, event))
    if isinstance(event, KeyIssued):
        held = replace(held, issued_at=envelope.occurred_at)
    if isinstance(event, KeyRevoked):
        held = replace(held, revoked_at=envelope.occurred_at)
    return held


def _write_key(docs: Documents, held: _Key, version: int) -> None:
    body = key_body(held.state, held.issued_at, held.revoked_at)
    docs.put(KEY, body["key_id"], body, partner_id=body["partner_id"],
             status="revoked" if body["revoked"] else "active", ref_id=body["role"])


MODELS = (
    StreamReadModels(partners.STREAM_TYPE, lambda stream_id: Partner(),
                     lambda state, envelope, event: partner.evolve(state, event), _write_partner),
    StreamReadModels(keys.STREAM_TYPE, lambda stream_id: _Key(), _fold_key, _write_key),
)


rebuild_read_models = rebuilder((PARTNER, KEY), MODELS)
"""Forget the partner and key documents and write them again from the streams; events folded."""
