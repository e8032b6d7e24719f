"""How every ``o2c`` command finds the running system: one place, one order.

``o2c up`` records where it put things in ``<data-dir>/system.json`` (mode 0600,
since a database URL may carry a password): the service URLs, the database URL
and the schema prefix. A command then takes, for each of them,

1. its own option (``--database-url``), then
2. the environment (``O2C_DATABASE_URL``, ``O2C_SERVICE_URLS``, ``O2C_<SERVICE>_PORT``,
   ``O2C_ADMIN_TOKEN``), then
3. what ``o2c up`` recorded in the data directory, then
4. the defaults (SQLite files in the data directory, the default ports).

So ``o2c audit verify`` after ``o2c up --database-url ...`` reads PostgreSQL without
being told again, and a wrong ``--data-dir`` is named in one line instead of
leaving empty SQLite files behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from o2c.private_files import write_private

SYSTEM_FILE = "system.json"
ADMIN_TOKEN_FILE = "admin-token"


class NotFound(Exception):
    """The running system (or its data) is not where the command looked; the message says how to fix it."""


def record(data_dir: Path, *, service_urls: dict[str, str], database_url: str | None,
           schema_prefix: str | None) -> None:
    """Write what later commands need to find this system (called by ``o2c up`` on start)."""
    body = {"service_urls": service_urls, "database_url": database_url, "schema_prefix": schema_prefix}
    write_private(data_dir / SYSTEM_FILE, orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())


def recorded(data_dir: Path) -> dict[str, Any]:
    """What ``o2c up`` recorded in ``data_dir`` ({} when it never ran there)."""
    try:
        found = orjson.loads((data_dir / SYSTEM_FILE).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {}
    return found if isinstance(found, dict) else {}


def settings(data_dir: Path, database_url: str | None = None) -> Any:
    """The :class:`RuntimeSettings` of the system that ``o2c up`` ran in ``data_dir``."""
    from libs.runtime.settings import RuntimeSettings

    known = recorded(data_dir)
    chosen: dict[str, Any] = {"data_dir": data_dir}
    url = database_url or os.environ.get("O2C_DATABASE_URL") or known.get("database_url")
    if url:
        chosen["database_url"] = url
        prefix = os.environ.get("O2C_SCHEMA_PREFIX") or known.get("schema_prefix")
        if prefix:
            chosen["schema_prefix"] = prefix
    if "O2C_SERVICE_URLS" not in os.environ and known.get("service_urls"):
        chosen["service_urls"] = known["service_urls"]
    return RuntimeSettings(**chosen)


def service_url(name: str, data_dir: Path) -> str:
    """Where service ``name`` of that system answers."""
    return str(settings(data_dir).url_of(name))


def admin_token(data_dir: Path) -> str:
    """The bootstrap admin secret: ``O2C_ADMIN_TOKEN``, else ``<data-dir>/admin-token``."""
    token = os.environ.get("O2C_ADMIN_TOKEN")
    if token:
        return token
    path = data_dir / ADMIN_TOKEN_FILE
    if not path.exists():
        raise NotFound(f"no admin key: set O2C_ADMIN_TOKEN, or give the --data-dir that `o2c up` "
                       f"used ({path} does not exist)")
    return path.read_text().strip()


def require_stores(data_dir: Path, services: list[str], database_url: str | None) -> None:
    """Refuse, naming the fix, when SQLite stores are expected but absent (nothing is created)."""
    if database_url:
        return
    missing = [name for name in services if not (data_dir / f"{name}.db").exists()]
    if missing:
        raise NotFound(f"no {', '.join(missing)} store in {data_dir.resolve()}: give the --data-dir "
                       f"that `o2c up` used, or --database-url when the system runs on PostgreSQL")
