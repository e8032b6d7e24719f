"""``o2c replay --service partners``: the documents rebuilt from the store equal the live ones."""

from __future__ import annotations

from libs.events import default_registry
from services.partners.application.read_models import KEY, LEGAL_ID, PARTNER
from services.partners.application.rebuild import rebuild_read_models
from tests.read_model_support import documents_of
from tests.service_support import ADMIN, RunningService

from .support import issue_key, register, sign


async def test_rebuilding_from_the_store_gives_the_documents_the_commands_wrote(svc: RunningService) -> None:
    first = (await register(svc))["id"]
    second = (await register(svc, legal_id="91310000MA1FL0002Y", name="Xibei Pumps"))["id"]
    await sign(svc, first, "trial")
    await sign(svc, second)
    for action, body in (("suspend", {"reason": "late"}), ("reinstate", None),
                         ("terminate", {"reason": "fraud"})):
        response = await svc.client.post(f"/v1/partners/{first}/{action}", json=body, headers=ADMIN)
        assert response.status_code == 200, response.text
    await issue_key(svc, "finance")
    await issue_key(svc, "partner", second)
    kept = (await svc.client.post("/v1/keys", json={"role": "auditor"}, headers=ADMIN)).json()
    assert (await svc.client.delete(f"/v1/keys/{kept['key_id']}", headers=ADMIN)).status_code == 204
    live = await documents_of(svc.ctx.db, (PARTNER, KEY, LEGAL_ID))
    assert {row[0] for row in live} == {PARTNER, KEY, LEGAL_ID}
    assert [row[3] for row in live if row[0] == PARTNER] != []

    folded = await rebuild_read_models(svc.ctx.db, default_registry())

    assert folded == len(await svc.ctx.store.load(f"partner-{first}")) + len(
        await svc.ctx.store.load(f"partner-{second}")) + 4  # three keys issued, one revoked
    assert await documents_of(svc.ctx.db, (PARTNER, KEY, LEGAL_ID)) == live
    listed = await svc.client.get(f"/v1/partners/{first}", headers=ADMIN)
    assert listed.json()["status"] == "terminated"
