"""Read o2c's events knowing only the published contract (``docs/asyncapi.json``).

This file imports nothing from o2c: a consuming team copies it, with the AsyncAPI
document, and needs only ``aiokafka`` and ``jsonschema``. For every message it checks
the CloudEvents headers, validates the message against its schema in the document
(unknown event types are skipped, as a consumer of a growing contract must), and prints
one JSON line: the event type, stream, version, the payload's schema version and the
payload itself.

    python examples/event_consumer.py --bootstrap localhost:9092 --asyncapi docs/asyncapi.json
    python examples/event_consumer.py ... --channel credit --max-messages 100

A real consumer also records each ``event_id`` it has applied (delivery is at least
once) and applies a stream's events in ``stream_version`` order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

CLOUDEVENTS = ("ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time")


class Contract:
    """The AsyncAPI document: topics by channel, a validator per message."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry = Registry().with_resource("urn:asyncapi", resource)
        self._validators: dict[str, Draft202012Validator] = {}

    def topics(self, channels: list[str] | None) -> list[str]:
        wanted = self.document["channels"]
        return [wanted[name]["address"] for name in (channels or list(wanted))]

    def validator(self, event_type: str) -> Draft202012Validator | None:
        message = self.document["components"]["messages"].get(event_type)
        if message is None:
            return None
        if event_type not in self._validators:
            ref = "urn:asyncapi" + message["payload"]["$ref"]
            self._validators[event_type] = Draft202012Validator({"$ref": ref}, registry=self._registry)
        return self._validators[event_type]


def read(contract: Contract, headers: dict[str, str], value: bytes) -> dict[str, Any] | None:
    """The message as a printable line, or None for an event type the contract does not name."""
    missing = [name for name in CLOUDEVENTS if name not in headers]
    if missing:
        raise ValueError(f"message without CloudEvents headers {missing}")
    validator = contract.validator(headers["ce_type"])
    if validator is None:
        return None
    message = json.loads(value)
    errors = sorted(validator.iter_errors(message), key=lambda e: list(e.path))
    if errors:
        raise ValueError(f"{headers['ce_type']} does not match its schema: {errors[0].message}")
    return {"event_type": headers["ce_type"], "event_id": headers["ce_id"],
            "source": headers["ce_source"], "stream_id": message["stream_id"],
            "stream_version": message["stream_version"], "schema_version": message["schema_version"],
            "data": message["data"]}


async def consume(args: argparse.Namespace, contract: Contract) -> int:
    topics = args.topic or contract.topics(args.channel)
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=args.bootstrap, group_id=args.group,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen = 0
    loop = asyncio.get_running_loop()
    last = loop.time()
    try:
        while args.max_messages is None or seen < args.max_messages:
            batches = await consumer.getmany(timeout_ms=500)
            if not batches:
                if loop.time() - last > args.idle_timeout:
                    break
                continue
            last = loop.time()
            for records in batches.values():
                for record in records:
                    headers = {key: raw.decode() for key, raw in record.headers}
                    line = read(contract, headers, record.value)
                    if line is not None:
                        print(json.dumps(line, sort_keys=True), flush=True)
                        seen += 1
    finally:
        await consumer.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--asyncapi", default="docs/asyncapi.json")
    parser.add_argument("--channel", action="append", help="a channel of the document (repeatable)")
    parser.add_argument("--topic", action="append", help="read this topic instead (repeatable)")
    parser.add_argument("--group", default=None, help="consumer group (default: none, read all)")
    parser.add_argument("--max-messages", type=int, default=None)
    parser.add_argument("--idle-timeout", type=float, default=5.0, help="stop after this long idle")
    args = parser.parse_args(argv)
    contract = Contract(json.loads(Path(args.asyncapi).read_text(encoding="utf-8")))
    return asyncio.run(consume(args, contract))


if __name__ == "__main__":
    sys.exit(main())
