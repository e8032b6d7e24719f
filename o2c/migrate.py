"""``o2c migrate``: bring every service's schema to its newest revision, then exit.

Each service also migrates its own schema when it starts; this command does it once,
up front, as the Kubernetes migration Job does (``deploy/k8s/base/migrate-job.yaml``),
so a rollout begins only after a schema change went through and a failing migration
stops it where an operator sees it.
"""

from __future__ import annotations

from importlib import import_module

from libs.runtime.settings import DEFAULT_PORTS, RuntimeSettings
from libs.store.migrate import migrate

SERVICES = tuple(DEFAULT_PORTS)


async def migrate_services(settings: RuntimeSettings, services: list[str]) -> list[str]:
    """Migrate each named service's database, one after another; the names migrated."""
    done: list[str] = []
    for name in services:
        spec = import_module(f"services.{name}.app").SPEC
        db = settings.database(name)
        try:
            await migrate(db, [spec.migrations] if spec.migrations else [])
        finally:
            await db.dispose()
        done.append(name)
    return done
