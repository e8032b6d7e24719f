"""``o2c replay``: rebuild read models from the events, with a progress bar and the rate.

Read models are derived data. Each service's are rebuilt from its own store
(projections: from its archive of every service's events) by that service's
``rebuild_read_models``; this module only opens the database, shows progress
on stderr and reports what was folded.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from libs.events import default_registry
from libs.events.registry import EventRegistry
from libs.runtime.settings import RuntimeSettings
from libs.store.database import Database
from libs.store.migrate import migrate

Rebuild = Callable[..., Awaitable[int]]


def rebuilders() -> dict[str, Rebuild]:
    """Service name -> its read-model rebuild (``db, registry, *, progress, total`` -> events)."""
    from services.credit.application.rebuild import rebuild_read_models as credit
    from services.delivery.application.rebuild import rebuild_read_models as delivery
    from services.orders.application.rebuild import rebuild_read_models as orders
    from services.partners.application.rebuild import rebuild_read_models as partners
    from services.projections.application.replay import rebuild_read_models as projections
    from services.rebates.application.rebuild import rebuild_read_models as rebates

    return {"partners": partners, "orders": orders, "credit": credit, "delivery": delivery,
            "rebates": rebates, "projections": projections}


def _spec(name: str) -> Any:
    from importlib import import_module

    return import_module(f"services.{name}.app").SPEC


class _Rate(ProgressColumn):
    """Events per second since the start."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        rate = task.completed / elapsed if elapsed else 0.0
        return Text(f"{rate:,.0f} events/s", style="progress.data.speed")


async def replay_service(name: str, db: Database, registry: EventRegistry,
                         console: Console) -> dict[str, Any]:
    """Rebuild one service's read models; events folded, seconds and events per second."""
    spec = _spec(name)
    await migrate(db, [spec.migrations] if spec.migrations else [])
    with Progress(TextColumn(f"[bold]{name}"), BarColumn(), MofNCompleteColumn(), _Rate(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task(name, total=None)
        started = time.perf_counter()
        count = await rebuilders()[name](
            db, registry, total=lambda n: bar.update(task, total=n),
            progress=lambda n: bar.advance(task, n))
        seconds = time.perf_counter() - started
    return {"events": count, "seconds": round(seconds, 3),
            "events_per_s": round(count / seconds, 1) if seconds else 0.0}


async def replay(settings: RuntimeSettings, services: list[str], console: Console) -> dict[str, Any]:
    """Rebuild each named service's read models, one after another."""
    registry = default_registry()
    results: dict[str, Any] = {}
    for name in services:
        db = settings.database(name)
        try:
            results[name] = await replay_service(name, db, registry, console)
        finally:
            await db.dispose()
    return results
