"""The ``o2c`` command line: run the system, keys, audit, dead letters, benchmarks.

Failures the user can fix (a service that is down, a wrong ``--data-dir`` or
``--database-url``) are one line on stderr with the fix and exit code 1; ``--debug``
(or ``O2C_DEBUG=1``) shows the traceback instead. Every command finds the running
system the same way (``o2c.system``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
import orjson
import typer

from o2c import system
from o2c.dead_letters import dlq_app

app = typer.Typer(help="o2c: event-sourced channel order-to-cash backend.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
audit_app = typer.Typer(help="Audit: trails and tamper checks.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")

DATA_DIR = typer.Option(Path("data"), "--data-dir", envvar="O2C_DATA_DIR", help="Where data lives.")
DATABASE_URL = typer.Option(None, "--database-url", envvar="O2C_DATABASE_URL")
ONLY_SERVICES = typer.Option([], "--service", help="Only this service (repeatable; default: all).")


def _bench_app() -> typer.Typer:
    from o2c.bench.app import bench_app

    return bench_app


app.add_typer(_bench_app(), name="bench", help="Benchmarks: print one JSON object each.")


def _echo(value: object) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


_debug = False


def _refuse_unknown(services: list[str], known: Sequence[str]) -> None:
    unknown = [name for name in services if name not in known]
    if unknown:
        raise typer.BadParameter(f"no such service: {', '.join(unknown)} (known: {', '.join(known)})")


def _version(value: bool) -> None:
    if value:
        from libs.events.asyncapi import release

        typer.echo(f"o2c {release() or '(not installed)'}")
        raise typer.Exit()


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", envvar="O2C_DEBUG",
                               help="Show the traceback when a command fails."),
    show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit."),
) -> None:
    global _debug
    _debug = debug


def _one_line(error: BaseException) -> str:
    """What went wrong and how to fix it, in one line."""
    if isinstance(error, system.NotFound):
        return str(error)
    if isinstance(error, httpx.TransportError):
        where = error.request.url if error.__dict__.get("_request") else "a service"
        return (f"cannot reach {where} ({type(error).__name__}): is the system running? "
                f"Start it with `o2c up`, or point at it with O2C_SERVICE_URLS / --data-dir")
    from sqlalchemy.exc import DBAPIError

    if isinstance(error, DBAPIError | OSError | ConnectionError) or type(error).__module__.startswith(
            "asyncpg"):
        cause = getattr(error, "orig", None) or error
        return (f"cannot use the database ({type(cause).__name__}: {str(cause).splitlines()[0]}): "
                f"check --database-url / O2C_DATABASE_URL and --data-dir")
    return f"{type(error).__name__}: {error}"


def main() -> None:
    """The ``o2c`` entry point: the Typer app, with one-line errors unless ``--debug``."""
    try:
        app()
    except Exception as error:
        if _debug:
            raise
        hint = "" if isinstance(error, system.NotFound) else " (--debug shows the traceback)"
        typer.echo(f"o2c: {_one_line(error)}{hint}", err=True)
        sys.exit(1)


@app.command("up")
def up(
    data_dir: Path = DATA_DIR,
    database_url: str | None = typer.Option(None, "--database-url", envvar="O2C_DATABASE_URL",
                                            help="PostgreSQL URL (default: SQLite files)."),
    kafka: str | None = typer.Option(None, "--kafka", envvar="O2C_KAFKA_BOOTSTRAP",
                                     help="Real Kafka (default: the embedded broker)."),
    host: str = typer.Option("127.0.0.1", "--host", envvar="O2C_HOST"),
) -> None:
    """Start the whole system on this machine (Ctrl-C stops it)."""
    from o2c.supervisor import up_command

    up_command(data_dir, database_url, kafka, host)


@keys_app.command("create")
def keys_create(
    role: str = typer.Option(..., "--role", help="admin, sales, finance, warehouse, auditor, partner"),
    partner: str | None = typer.Option(None, "--partner", help="Partner id (role partner)."),
    name: str | None = typer.Option(None, "--name"),
    data_dir: Path = DATA_DIR,
) -> None:
    """Issue an API key through the partners service; the secret is printed once."""
    body = {"role": role, "partner_id": partner, "name": name}
    response = httpx.post(f"{system.service_url('partners', data_dir)}/v1/keys", json=body,
                          headers={"Authorization": f"Bearer {system.admin_token(data_dir)}"})
    _answer(response)


@keys_app.command("list")
def keys_list(
    role: str | None = typer.Option(None, "--role"),
    partner: str | None = typer.Option(None, "--partner"),
    revoked: bool | None = typer.Option(None, "--revoked/--active", help="Only revoked / only active."),
    data_dir: Path = DATA_DIR,
) -> None:
    """Every API key (id, role, partner, name, revoked), never a secret."""
    params: dict[str, str] = {"limit": "200"}
    for name, value in (("role", role), ("partner_id", partner)):
        if value:
            params[name] = value
    if revoked is not None:
        params["revoked"] = str(revoked).lower()
    items: list[object] = []
    with httpx.Client(base_url=system.service_url("partners", data_dir),
                      headers={"Authorization": f"Bearer {system.admin_token(data_dir)}"}) as client:
        while True:
            response = client.get("/v1/keys", params=params)
            if response.status_code >= 400:
                _answer(response)
            page = response.json()
            items.extend(page["items"])
            if not page.get("next_cursor"):
                break
            params["cursor"] = page["next_cursor"]
    _echo(items)


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: Path = DATA_DIR) -> None:
    """Revoke a key; every service refuses it within seconds."""
    response = httpx.delete(f"{system.service_url('partners', data_dir)}/v1/keys/{key_id}",
                            headers={"Authorization": f"Bearer {system.admin_token(data_dir)}"})
    if response.status_code == 204:
        typer.echo(f"revoked {key_id}")
        return
    _answer(response)


def _answer(response: httpx.Response) -> None:
    """Print the service's answer; exit 1 when it refused."""
    try:
        _echo(response.json())
    except ValueError:
        typer.echo(response.text)
    if response.status_code >= 400:
        raise typer.Exit(1)


@audit_app.command("trail")
def audit_trail(order_id: str, data_dir: Path = DATA_DIR) -> None:
    """Every event of an order across all services, in causal order."""
    response = httpx.get(f"{system.service_url('projections', data_dir)}/v1/views/orders/{order_id}/timeline",
                         headers={"Authorization": f"Bearer {system.admin_token(data_dir)}"})
    _answer(response)


@audit_app.command("verify")
def audit_verify(
    data_dir: Path = DATA_DIR,
    database_url: str | None = typer.Option(None, "--database-url", envvar="O2C_DATABASE_URL"),
) -> None:
    """Walk every service's hash chains directly in its database (services may be down).

    The audit keys are found the way the services find them: ``O2C_AUDIT_KEYS``, else
    ``O2C_AUDIT_KEY_FILE``, else ``<data-dir>/audit-key`` (which ``o2c up`` generates).
    Each store is also checked against the seal the projections' database anchored for
    it (``GET /v1/audit/verify`` moves the anchors; this command only reads them).
    """
    from sqlalchemy.exc import SQLAlchemyError

    from libs.events.chain import AuditKeyError
    from libs.runtime.settings import DEFAULT_PORTS
    from libs.store.integrity import SealAnchor, verify
    from services.projections.application import anchors

    settings = system.settings(data_dir, database_url)
    system.require_stores(data_dir, [name for name in DEFAULT_PORTS if name != "projections"],
                          settings.database_url)
    try:
        chain = settings.audit_chain()
    except AuditKeyError as error:
        raise typer.BadParameter(str(error)) from None

    async def anchored() -> dict[str, SealAnchor]:
        if not settings.database_url and not (data_dir / "projections.db").exists():
            return {}
        db = settings.database("projections")
        try:
            async with db.read() as conn:
                return await anchors.load(conn)
        except SQLAlchemyError:  # projections never ran here: nothing anchored yet
            return {}
        finally:
            await db.dispose()

    async def check() -> dict[str, object]:
        results: dict[str, object] = {}
        known = await anchored()
        for name in DEFAULT_PORTS:
            if name == "projections":
                continue
            db = settings.database(name)
            try:
                results[name] = (await verify(db, chain, known.get(name))).as_dict()
            finally:
                await db.dispose()
        return results

    results = asyncio.run(check())
    ok = all(r["ok"] for r in results.values())  # type: ignore[index]
    _echo({"ok": ok, "mode": chain.mode, "services": results})
    if not ok:
        raise typer.Exit(1)


@app.command("replay")
def replay(
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
    service: list[str] = ONLY_SERVICES,
) -> None:
    """Rebuild read models from the events: every service's, or those named with --service.

    Read models are derived data: each service's are thrown away and folded again
    from its own store (projections: from its archive of every service's events),
    in one transaction per service, so readers see the old ones until the new ones
    are complete. Writers of that service wait meanwhile. Progress and the rate go
    to stderr; the answer (events, seconds, events/s per service) to stdout.
    """
    from rich.console import Console

    from o2c.replay import rebuilders
    from o2c.replay import replay as run_replay

    known = list(rebuilders())
    _refuse_unknown(service, known)
    settings = system.settings(data_dir, database_url)
    if service:
        system.require_stores(data_dir, service, settings.database_url)
    else:  # every service that has a store here (SQLite: its file); none at all is a wrong --data-dir
        service = system.present_stores(data_dir, known, settings.database_url)
    results = asyncio.run(run_replay(settings, service, Console(stderr=True)))
    _echo({"replayed_events": sum(r["events"] for r in results.values()), "services": results})


@app.command("migrate")
def migrate(
    data_dir: Path = DATA_DIR,
    database_url: str | None = DATABASE_URL,
    service: list[str] = ONLY_SERVICES,
) -> None:
    """Bring every service's schema (or those named) to its newest revision, then exit.

    Services migrate themselves at start too; run this first (the Kubernetes migration
    Job does) so that a rollout starts on a migrated database.
    """
    from o2c.migrate import SERVICES, migrate_services

    _refuse_unknown(service, SERVICES)
    settings = system.settings(data_dir, database_url)
    _echo({"migrated": asyncio.run(migrate_services(settings, service or list(SERVICES)))})


@app.command("chaos")
def chaos(
    minutes: float = typer.Option(5.0, "--minutes", min=0.1, help="How long to load and kill."),
    database_url: str | None = typer.Option(None, "--database-url",
                                            help="PostgreSQL URL (schemas under a random prefix)."),
    private_postgres: bool = typer.Option(False, "--private-postgres",
                                          help="Start a private PostgreSQL server and kill it too."),
    kill_every: float = typer.Option(6.0, "--kill-every", min=0.5, help="Seconds between two kills."),
    replicas: bool = typer.Option(False, "--replicas",
                                  help="Run two replicas of every service (needs --database-url) "
                                       "and kill one replica of each instead."),
    data_dir: Path | None = typer.Option(None, "--data-dir",
                                         help="Where the system under test keeps its data "
                                              "(default: a temporary directory)."),
) -> None:
    """Run the system under load while killing every process in turn; print one JSON summary.

    Exit code 1 when anything was lost, doubled, stuck, disagreed or failed verification
    (the data directory, with every log, is then kept and named on stderr).
    """
    import shutil
    import tempfile

    from o2c.chaos import ChaosPlan, run_chaos
    from o2c.chaos_replicas import run_replicas

    if database_url and private_postgres:
        raise typer.BadParameter("give --database-url or --private-postgres, not both")
    if replicas and not database_url:
        raise typer.BadParameter("--replicas needs --database-url (replicas share PostgreSQL)")
    plan = ChaosPlan(load_s=minutes * 60, kill_every_s=kill_every, settle_s=max(60.0, minutes * 12),
                     agree_s=max(30.0, minutes * 6))
    where = data_dir or Path(tempfile.mkdtemp(prefix="o2c-chaos-"))
    def report(line: str) -> None:
        typer.echo(line, err=True)

    if replicas:
        assert database_url is not None
        summary = run_replicas(plan, where, database_url, report=report)
    else:
        summary = run_chaos(plan, where, database_url=database_url,
                            private_postgres=private_postgres, report=report)
    _echo(summary)
    if not summary.get("ok"):
        typer.echo(f"logs and data kept in {where}", err=True)
        raise typer.Exit(1)
    if data_dir is None:
        shutil.rmtree(where, ignore_errors=True)
