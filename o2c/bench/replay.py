"""``o2c bench replay``: ``o2c replay`` over a large archive, against a hand-batched asyncpg fold.

The archive is made of real events: a few orders go through the running system
(started as ``o2c up`` starts it, on PostgreSQL) and the projections' archive of
that run (every event of every service, setup included) is the template. It is
copied until the archive of a fresh projections schema holds at least ``events``
rows; each copy gets fresh ids (``ord_…``, ``inv_…``, partner, program, event and
correlation ids), so copies are separate partners, orders and invoices.

Timed, in interleaved rounds:

- ours: the ``o2c replay`` command itself, in a child process (``replay --database-url``,
  parsed by the CLI), timed inside the child from just before the command to its end
  (interpreter start-up and imports are not counted); the child's peak RSS
  (``VmHWM`` of its own address space, read by the child as it ends) is
  ``max_rss_mb``. Not ``wait4``'s ``ru_maxrss``: Linux carries the forked copy of
  this process's RSS across ``exec`` into it, so it reported this process's size
  (which holds the baseline's documents) instead of the replay's;
- baseline: the same events folded by the projections' pure ``evolve`` functions
  into documents held in memory, written with one ``COPY`` into the same table,
  reading the archive in pages with plain asyncpg, decoding (and validating, the
  ordinary way) only the events a projector folds.

Both must leave the same documents (checked: ``same_documents``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from libs.events import credit, default_registry, rebates
from libs.events.base import DomainEvent, format_timestamp, utc_now
from libs.events.codec import canonical_json
from libs.events.envelope import Envelope
from libs.store.migrate import migrate
from o2c.bench import chain
from o2c.bench.system import DEFAULT_PG_URL, _drop_schemas, plain_pg_url, running_system
from services.projections.app import SPEC
from services.projections.application.projectors import PROJECTORS, project_invoice, project_order
from services.projections.application.projectors import project_partner as _partner
from services.projections.domain import read_models, receivables
from services.projections.domain import rebates as rebate_rules

DEFAULT_EVENTS = 100_000
TEMPLATE_ORDERS = 12
PAGE = 5_000
COLUMNS = ("service", "position", "event_id", "event_type", "schema_version", "stream_id", "stream_type",
           "stream_version", "occurred_at", "correlation_id", "causation_id", "actor", "data", "stream_hash",
           "order_id", "partner_id", "invoice_id")
ENVELOPE_COLUMNS = ("event_id", "event_type", "schema_version", "stream_id", "stream_type", "stream_version",
                    "occurred_at", "correlation_id", "causation_id", "actor", "data", "position",
                    "stream_hash")
"""In the order ``Envelope`` takes them."""
_ID = re.compile(r"\b([a-z]{2,5})_([0-9a-f]{20})\b")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_BENCH_NS = uuid.UUID("6b1f3f5e-8c0a-4a7e-9a39-0c1d5e0b7a11")


# -- the archive ----------------------------------------------------------------------------


def _template(system: Any, orders: int) -> list[dict[str, Any]]:
    """A few orders through the whole running system; the projections' archive of it."""
    state = chain.set_up(system, 2, orders)
    chain.drive(state, orders, concurrency=4, stuck_after=120)
    url = plain_pg_url(system.supervisor.database_url)
    schema = f"{system.schema_prefix}projections"

    async def read() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(url, server_settings={"search_path": schema})
        try:
            rows = await conn.fetch(f"SELECT {', '.join(COLUMNS)} FROM archive ORDER BY received_seq")
            return [dict(row) for row in rows]
        finally:
            await conn.close()

    return asyncio.run(read())


def _copier(copy: int) -> Callable[[Any], Any]:
    """Fresh ids for one copy of the template (the same old id always maps to the same new one)."""

    def new_short(match: re.Match[str]) -> str:
        digest = hashlib.sha256(f"{copy}:{match.group(0)}".encode()).hexdigest()[:20]
        return f"{match.group(1)}_{digest}"

    def new_uuid(value: str) -> str:
        return str(uuid.uuid5(_BENCH_NS, f"{copy}:{value}"))

    def rewrite(value: Any) -> Any:
        if isinstance(value, uuid.UUID):
            return uuid.UUID(new_uuid(str(value)))
        if isinstance(value, str):
            return _UUID.sub(lambda m: new_uuid(m.group(0)), _ID.sub(new_short, value))
        return value

    return rewrite


async def _fill(url: str, schema: str, template: list[dict[str, Any]], at_least: int) -> int:
    """Copy the template into the archive until it holds ``at_least`` rows; the count."""
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        copies = -(-at_least // len(template))
        for first in range(0, copies, 50):
            records = []
            for copy in range(first, min(copies, first + 50)):
                rewrite = _copier(copy)
                records += [tuple(rewrite(row[column]) for column in COLUMNS) for row in template]
            await conn.copy_records_to_table("archive", records=records, columns=COLUMNS)
        return int(await conn.fetchval("SELECT count(*) FROM archive"))
    finally:
        await conn.close()


# -- ours: the real command in a child process ------------------------------------------------


def child() -> None:
    """Run ``o2c replay`` with the given arguments, timed after imports; print the seconds."""
    import contextlib
    import io

    from typer.main import get_command

    from o2c.cli import app
    from o2c.replay import rebuilders

    rebuilders()  # imports every service's rebuild before the clock starts

    command = get_command(app)
    output = io.StringIO()
    started, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(output):
        command.main(["replay", *sys.argv[1:]], standalone_mode=False)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    status = Path("/proc/self/status").read_text()
    peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    sys.stdout.write(orjson.dumps({"seconds": seconds, "cpu_s": cpu, "output": output.getvalue(),
                                   "peak_rss_mb": peak_kb / 1024}).decode() + "\n")


def _ours(url: str, prefix: str) -> tuple[float, float, float, str]:
    """Seconds, CPU seconds (the child's own), peak RSS (MB) and the printed answer of one
    ``o2c replay`` in a child process."""
    env = dict(os.environ, O2C_SCHEMA_PREFIX=prefix)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from o2c.bench.replay import child; child()", "--database-url", url,
         "--service", "projections"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"o2c replay failed ({proc.returncode}): {err.decode()[-2000:]}")
    answer = orjson.loads(out.splitlines()[-1])
    return answer["seconds"], answer["cpu_s"], answer["peak_rss_mb"], answer["output"]


# -- baseline: hand-batched ------------------------------------------------------------------


def _fold(docs: dict[tuple[str, str], dict[str, Any]], envelope: Envelope, event: DomainEvent) -> None:
    """What ``projectors.PROJECTORS`` does to one event, on documents held in memory."""
    projector = PROJECTORS.get(envelope.event_type)
    if projector is None:
        return

    def doc(kind: str, doc_id: str, blank: dict[str, Any]) -> dict[str, Any]:
        found = docs.get((kind, doc_id))
        return found["body"] if found else blank

    def put(kind: str, doc_id: str, body: dict[str, Any], partner_id: str | None = None,
            status: str | None = None) -> None:
        docs[(kind, doc_id)] = {"body": body, "partner_id": partner_id, "status": status}

    if projector is _partner:
        pid = event.partner_id  # type: ignore[attr-defined]
        body = read_models.evolve_partner(doc("partner", pid, read_models.blank_partner(pid)), event)
        put("partner", pid, body, pid, body["status"])
    elif projector is project_order:
        oid = event.order_id  # type: ignore[attr-defined]
        body = read_models.evolve_order(doc("order", oid, read_models.blank_order(oid)), event,
                                        occurred_at=envelope.occurred_at,
                                        correlation_id=str(envelope.correlation_id))
        put("order", oid, body, body["partner_id"], body["status"])
    elif projector is project_invoice:
        iid = getattr(event, "invoice_id", None)
        if iid is None:
            return
        body = receivables.evolve_invoice(doc("invoice", iid, receivables.blank_invoice(iid)), event,
                                          event_id=str(envelope.event_id),
                                          occurred_on=envelope.occurred.date())
        put("invoice", iid, body, body["partner_id"], receivables.status_of(body))
    elif isinstance(event, credit.CreditNoteIssued):
        put("credit-note", event.credit_note_id, event.payload(), event.partner_id, event.source_kind)
    elif isinstance(event, credit.PaymentReceived):
        put("payment", event.payment_id, event.payload(), event.partner_id)
    elif isinstance(event, rebates.RebateAccrued):
        aid = rebate_rules.accrual_id(event.program_id, event.partner_id)
        body = rebate_rules.evolve_accrual(
            doc("accrual", aid, rebate_rules.blank_accrual(event.program_id, event.partner_id)), event,
            stamp=[envelope.stream_version, envelope.occurred_at])
        put("accrual", aid, body, event.partner_id)
    elif isinstance(event, rebates.SettlementProposed | rebates.SettlementApproved):
        sid = event.settlement_id
        body = rebate_rules.evolve_settlement(doc("settlement", sid, rebate_rules.blank_settlement(sid)),
                                              event)
        put("settlement", sid, body, body["partner_id"], body["status"])
    elif isinstance(event, rebates.ProgramPublished):
        put("program", event.program_id, rebate_rules.program_doc(event))
    else:
        raise RuntimeError(f"the baseline does not fold {envelope.event_type}")


async def _baseline(url: str, schema: str) -> tuple[float, float, int]:
    """Seconds, CPU seconds (this process's) and events: read the archive in pages, fold in
    memory, one COPY of the documents."""
    from services.projections.application.documents import KINDS

    registry = default_registry()
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        started, cpu = time.perf_counter(), time.process_time()
        docs: dict[tuple[str, str], dict[str, Any]] = {}
        after, count = 0, 0
        envelope_columns = ", ".join(ENVELOPE_COLUMNS)
        while rows := await conn.fetch(
                f"SELECT received_seq, {envelope_columns} FROM archive WHERE received_seq > $1 "
                f"ORDER BY received_seq LIMIT {PAGE}", after):
            for row in rows:
                if row["event_type"] not in PROJECTORS:  # folded by nothing: not worth decoding
                    continue
                envelope = Envelope(*tuple(row)[1:])
                _fold(docs, envelope, registry.decode(envelope))
            count += len(rows)
            after = rows[-1][0]
        stamp = format_timestamp(utc_now())
        async with conn.transaction():
            await conn.execute("DELETE FROM documents WHERE kind = ANY($1::text[])", list(KINDS))
            await conn.copy_records_to_table("documents", columns=(
                "kind", "id", "partner_id", "status", "body", "version", "updated_at"), records=[
                (kind, doc_id, d["partner_id"], d["status"], canonical_json(d["body"]).decode(), 0, stamp)
                for (kind, doc_id), d in docs.items()])
        return time.perf_counter() - started, time.process_time() - cpu, count
    finally:
        await conn.close()


async def _digest(url: str, schema: str) -> str:
    """A digest of every projections document (kind, id, partner, status, body)."""
    from services.projections.application.documents import KINDS

    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        rows = await conn.fetch("SELECT kind, id, partner_id, status, body FROM documents "
                                "WHERE kind = ANY($1::text[]) ORDER BY kind, id", list(KINDS))
        return hashlib.sha256(orjson.dumps([tuple(row) for row in rows])).hexdigest()
    finally:
        await conn.close()


# -- the run ------------------------------------------------------------------------------------


def run(*, events: int = DEFAULT_EVENTS, rounds: int = 3, pg_url: str | None = None,
        template_orders: int = TEMPLATE_ORDERS) -> dict[str, Any]:
    """The JSON object ``o2c bench replay`` prints."""
    started = time.perf_counter()
    url = plain_pg_url(pg_url or os.environ.get("O2C_BENCH_PG_URL") or DEFAULT_PG_URL)
    with running_system(url) as system:
        template = _template(system, template_orders)
    prefix = f"benchreplay{uuid.uuid4().hex[:8]}_"
    schema = f"{prefix}projections"
    ours: list[tuple[float, float, float]] = []
    base: list[tuple[float, float]] = []
    digests: set[str] = set()
    try:
        from libs.runtime.settings import RuntimeSettings

        db = RuntimeSettings(database_url=url, schema_prefix=prefix).database("projections")

        async def prepare() -> int:
            try:
                await migrate(db, [SPEC.migrations] if SPEC.migrations else [])
            finally:
                await db.dispose()
            return await _fill(url, schema, template, events)

        archived = asyncio.run(prepare())
        for _ in range(rounds):
            seconds, cpu, rss, answer = _ours(url, prefix)
            replayed = orjson.loads(answer)["replayed_events"]
            if replayed != archived:
                raise RuntimeError(f"o2c replay folded {replayed} events, the archive holds {archived}")
            ours.append((seconds, cpu, rss))
            digests.add(asyncio.run(_digest(url, schema)))
            seconds, cpu, folded = asyncio.run(_baseline(url, schema))
            if folded != archived:
                raise RuntimeError(f"the baseline folded {folded} events, the archive holds {archived}")
            base.append((seconds, cpu))
            digests.add(asyncio.run(_digest(url, schema)))
    finally:
        asyncio.run(_drop_schemas(url, prefix))
    eps = round(statistics.median(archived / s for s, _, _ in ours), 1)
    baseline_eps = round(statistics.median(archived / s for s, _ in base), 1)
    cpu_us = round(statistics.median(c for _, c, _ in ours) / archived * 1e6, 1)
    baseline_cpu_us = round(statistics.median(c for _, c in base) / archived * 1e6, 1)
    return {
        "events": archived, "eps": eps, "baseline_eps": baseline_eps,
        "ratio": round(eps / baseline_eps, 3) if baseline_eps else 0.0,
        "cpu_us_per_event": cpu_us, "baseline_cpu_us_per_event": baseline_cpu_us,
        "max_rss_mb": round(max(rss for _, _, rss in ours), 1),
        "same_documents": len(digests) == 1,
        "config": {"database": "postgresql", "rounds": rounds, "template_events": len(template),
                   "template_orders": template_orders, "statistic": "median of interleaved rounds",
                   "cpus": os.cpu_count()},
        "detail": {"ours_s": [round(s, 2) for s, _, _ in ours],
                   "ours_cpu_s": [round(c, 2) for _, c, _ in ours],
                   "ours_rss_mb": [round(r, 1) for _, _, r in ours],
                   "baseline_s": [round(s, 2) for s, _ in base],
                   "baseline_cpu_s": [round(c, 2) for _, c in base]},
        "elapsed_s": round(time.perf_counter() - started, 1),
        "measured_at": datetime.now().isoformat(timespec="seconds"),
    }

