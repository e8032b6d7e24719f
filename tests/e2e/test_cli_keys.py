"""``o2c keys create | list | revoke`` against the running system, found through its data
directory alone (no service URLs or ports in the environment)."""

from __future__ import annotations

import orjson

from tests.e2e.conftest import System, eventually
from tests.o2c.test_cli import o2c


def test_a_key_is_created_listed_without_its_secret_and_revoked(system: System) -> None:
    at = ["--data-dir", str(system.supervisor.data_dir)]
    env = {"O2C_ADMIN_TOKEN": "e2e-admin-token"}
    created = o2c("keys", "create", "--role", "auditor", "--name", "cli e2e", *at, env=env)
    assert created.returncode == 0, created.stderr
    issued = orjson.loads(created.stdout)
    key_id, secret = issued["key_id"], issued["secret"]

    active = o2c("keys", "list", "--role", "auditor", "--active", *at, env=env)
    assert active.returncode == 0, active.stderr
    assert key_id in [k["key_id"] for k in orjson.loads(active.stdout)]
    assert secret not in active.stdout and '"secret"' not in active.stdout

    revoked = o2c("keys", "revoke", key_id, *at, env=env)
    assert (revoked.returncode, revoked.stdout.strip()) == (0, f"revoked {key_id}")
    with system.client("partners", secret) as partners:
        eventually(lambda: partners.get("/v1/partners/none").status_code, lambda s: s == 401,
                   what="the revoked key to be refused")
    listed = orjson.loads(o2c("keys", "list", "--revoked", *at, env=env).stdout)
    assert key_id in [k["key_id"] for k in listed]
    assert key_id not in [k["key_id"] for k in orjson.loads(
        o2c("keys", "list", "--active", *at, env=env).stdout)]

    unknown = o2c("keys", "revoke", "key_none", *at, env=env)
    assert unknown.returncode == 1
    assert orjson.loads(unknown.stdout)["status"] == 404
