"""A save remembers the account as it folded it, and a payment's bank reference is claimed
before anything is decided (both databases)."""

from __future__ import annotations

from libs.events.base import DomainEvent
from services.credit.application.accounts import SNAPSHOTS
from services.credit.domain.account import Account, fold_live, stream_id
from tests.credit.support import Feed, account_events, ok, pay
from tests.service_support import RunningService


async def _stream(svc: RunningService, partner_id: str) -> list[DomainEvent]:
    return [svc.ctx.registry.decode(e) for e in await svc.ctx.store.load(stream_id(partner_id))]


async def test_the_next_load_starts_from_the_account_as_the_last_save_left_it(
        svc: RunningService, feed: Feed) -> None:
    await feed.register("p1", limit=100_000, term=30)
    finance = await feed.key("finance")
    await feed.order("o1", "p1", 5_000)
    await feed.ship_all("o1")
    stream = await _stream(svc, "p1")
    remembered = SNAPSHOTS.remembered(stream_id("p1"))
    assert remembered is not None and remembered.version == len(stream)  # as the reaction saved it
    for amount in (1_000, 2_500):
        ok(await pay(svc, finance, "p1", amount), 201)
        stream = await _stream(svc, "p1")
        remembered = SNAPSHOTS.remembered(stream_id("p1"))
        assert remembered is not None
        assert remembered.version == len(stream)  # the payment's own events are not folded again
        assert remembered.state == fold_live(Account(), stream)


async def test_a_refused_payment_leaves_its_bank_reference_free(svc: RunningService, feed: Feed) -> None:
    await feed.register("p1", limit=100_000, term=30)
    finance = await feed.key("finance")
    refused = await pay(svc, finance, "p1", 100, bank_ref="REF-9", currency="EUR")
    assert refused.status_code == 422, refused.text
    assert (await pay(svc, finance, "nobody", 100, bank_ref="REF-9")).status_code == 404
    body = ok(await pay(svc, finance, "p1", 100, bank_ref="REF-9"), 201)
    assert body["bank_ref"] == "REF-9"
    assert [t for t, _ in await account_events(svc, "p1")].count("PaymentReceived") == 1
    repeat = await pay(svc, finance, "p1", 100, bank_ref="REF-9", currency="EUR")
    assert repeat.status_code == 409  # a reference taken answers 409 before anything is decided
