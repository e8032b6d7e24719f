"""The ``o2c`` command line."""

from __future__ import annotations

import asyncio

import orjson
import typer

from libs.messaging.dlq import redrive

app = typer.Typer(help="o2c: event-sourced channel order-to-cash backend.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead letters.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


def _bench_app() -> typer.Typer:
    from o2c.bench.store import bench_app

    return bench_app


app.add_typer(_bench_app(), name="bench", help="Benchmarks: print one JSON object each.")


@dlq_app.command("redrive")
def dlq_redrive(
    kafka: str = typer.Option("127.0.0.1:9092", envvar="O2C_KAFKA_BOOTSTRAP",
                              help="Kafka bootstrap servers."),
    consumer: str | None = typer.Option(None, help="Only the dead letters of this consumer."),
) -> None:
    """Put dead-lettered events back on their topics (each redriven once)."""
    count = asyncio.run(redrive(kafka, consumer=consumer))
    typer.echo(orjson.dumps({"redriven": count}).decode())
