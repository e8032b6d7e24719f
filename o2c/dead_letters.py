"""``o2c dlq``: dead letters of the running system, through each service's HTTP API.

Each consumer group is one service (its consumer is named after it) and keeps
its own dead letters; a redrive re-applies them in that service only
(``libs.runtime.dead_letters``). The commands find the services the way the
other commands do (``o2c.system``: the environment, then what ``o2c up`` recorded
in the data directory, then the default ports) with the admin key
(``O2C_ADMIN_TOKEN`` or ``<data-dir>/admin-token``). They
say so plainly when there is nothing to do, and exit 1 when a service cannot
be reached or refuses.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import typer

from o2c import system

dlq_app = typer.Typer(help="Dead letters: list, show, redrive, discard.", no_args_is_help=True)

DATA_DIR = typer.Option(Path("data"), "--data-dir", envvar="O2C_DATA_DIR", help="Where data lives.")
CONSUMER = typer.Option(None, "--consumer", help="Only this consumer (a service name).")
REDRIVE_TIMEOUT_S = 300.0
READ_TIMEOUT_S = 10.0


@dataclass
class Answers:
    """What each service answered (``found``), which had nothing (404) and which failed."""

    found: dict[str, Any] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def report_failures(self) -> None:
        for name, problem in self.failed.items():
            typer.echo(f"{name}: {problem}", err=True)


def _services(consumer: str | None) -> list[str]:
    from libs.runtime.settings import DEFAULT_PORTS

    if consumer is None:
        return list(DEFAULT_PORTS)
    if consumer not in DEFAULT_PORTS:
        raise typer.BadParameter(f"unknown consumer {consumer!r}; one of {', '.join(DEFAULT_PORTS)}")
    return [consumer]


def _ask_each(services: list[str], data_dir: Path, send: Callable[[httpx.Client], httpx.Response],
              timeout: float = READ_TIMEOUT_S) -> Answers:
    """Call every service in turn (``send`` gets a client bound to it)."""
    token = system.admin_token(data_dir)
    answers = Answers()
    for name in services:
        url = system.service_url(name, data_dir)
        try:
            with httpx.Client(base_url=url, timeout=timeout,
                              headers={"Authorization": f"Bearer {token}"}) as client:
                response = send(client)
        except httpx.HTTPError as error:
            answers.failed[name] = f"cannot reach {url}: {error!r}"
            continue
        if response.status_code == 404:
            answers.absent.append(name)
        elif response.status_code >= 400:
            answers.failed[name] = f"{url} answered {response.status_code}: {response.text[:500]}"
        else:
            answers.found[name] = response.json()
    return answers


def _echo(value: object) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _finish(answers: Answers) -> None:
    answers.report_failures()
    if answers.failed and not answers.found and not answers.absent:
        typer.echo("the system cannot be reached: is `o2c up` running (and O2C_ADMIN_TOKEN "
                   "or data/admin-token the admin key)?", err=True)
    if answers.failed:
        raise typer.Exit(1)


@dlq_app.command("list")
def dlq_list(
    consumer: str | None = CONSUMER,
    everything: bool = typer.Option(False, "--all", help="Resolved dead letters too."),
    data_dir: Path = DATA_DIR,
) -> None:
    """Unresolved dead letters of every consumer, and streams waiting on a gap."""
    answers = _ask_each(_services(consumer), data_dir, lambda client: client.get(
        "/internal/dead-letters", params={"all": "true"} if everything else {}))
    letters = [{"consumer": name, **letter} for name, body in answers.found.items()
               for letter in body["dead_letters"]]
    waiting = [{"consumer": name, **stream} for name, body in answers.found.items()
               for stream in body["waiting_streams"]]
    if letters or waiting:
        _echo({"dead_letters": letters, "waiting_streams": waiting})
    elif answers.found:
        typer.echo(f"no dead letters and no waiting streams in {', '.join(answers.found)}")
    _finish(answers)


def _echo_found_or_exit(answers: Answers, missing: str) -> None:
    """Print what the consumers found; when every one answered and none had it, say ``missing``
    and exit 1 (a single dead letter was asked for by id)."""
    if answers.found:
        _echo(list(answers.found.values()))
    elif not answers.failed:
        typer.echo(missing, err=True)
        raise typer.Exit(1)
    _finish(answers)


@dlq_app.command("show")
def dlq_show(event_id: uuid.UUID, consumer: str | None = CONSUMER,
             data_dir: Path = DATA_DIR) -> None:
    """One dead letter (in every consumer that has it), with its message."""
    answers = _ask_each(_services(consumer), data_dir,
                        lambda client: client.get(f"/internal/dead-letters/{event_id}"))
    _echo_found_or_exit(answers, f"no dead letter {event_id}")


@dlq_app.command("redrive")
def dlq_redrive(
    consumer: str | None = CONSUMER,
    event_id: uuid.UUID | None = typer.Option(None, "--id", help="Only this dead letter."),
    data_dir: Path = DATA_DIR,
) -> None:
    """Re-apply dead letters in the consumer that failed them, in stream order (never on a
    shared topic: other consumers do not see them again)."""
    body = {"ids": [str(event_id)]} if event_id else {}
    answers = _ask_each(_services(consumer), data_dir,
                        lambda client: client.post("/internal/dead-letters/redrive", json=body),
                        timeout=REDRIVE_TIMEOUT_S)
    acted = {name: report for name, report in answers.found.items()
             if report["attempted"] or report["healed_streams"]}
    if acted:
        _echo({"consumers": acted, "redriven": sum(r["redriven"] for r in acted.values()),
               "still_dead": sum(r["still_dead"] + r["undecodable"] for r in acted.values())})
    elif answers.found and not answers.failed:
        what = f"dead letter {event_id}" if event_id else "dead letters"
        typer.echo(f"nothing to redrive: no unresolved {what} in {', '.join(answers.found)}")
        if event_id:
            raise typer.Exit(1)
    _finish(answers)


@dlq_app.command("discard")
def dlq_discard(
    event_id: uuid.UUID = typer.Option(..., "--id", help="The dead letter to discard."),
    reason: str = typer.Option(..., "--reason", help="Why it is never to be applied (recorded)."),
    consumer: str | None = CONSUMER,
    data_dir: Path = DATA_DIR,
) -> None:
    """Resolve a dead letter as never to be applied; who and why are recorded."""
    if not reason.strip():
        raise typer.BadParameter("give a reason")
    answers = _ask_each(_services(consumer), data_dir, lambda client: client.post(
        f"/internal/dead-letters/{event_id}/discard", json={"reason": reason}))
    _echo_found_or_exit(answers, f"nothing to discard: no unresolved dead letter {event_id}")
