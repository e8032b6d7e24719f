"""Regenerate the published event contract from ``libs/events``.

Writes three files:

- ``docs/asyncapi.json``: the AsyncAPI 3 document (also served at ``/asyncapi.json``);
- ``docs/events.md``: the event catalogue, one section per topic, read from that document;
- ``libs/events/published.json``: every (event type, schema version) ever published, with the
  payload shape consumers depend on. Append-only: an entry is added when a type or a version
  first appears and is never rewritten, so the compatibility test
  (``tests/libs/test_event_compatibility.py``) compares each class with what was first
  published under its version.

    .venv/bin/python docs/event_catalogue.py          # rewrite the three files
    .venv/bin/python docs/event_catalogue.py --check  # exit 1 when one is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from libs.events import CONTRACT_MODULES
from libs.events.asyncapi import document, resolved

ROOT = Path(__file__).resolve().parent.parent
ASYNCAPI = ROOT / "docs" / "asyncapi.json"
CATALOGUE = ROOT / "docs" / "events.md"
PUBLISHED = ROOT / "libs" / "events" / "published.json"


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


def published(current: dict[str, Any]) -> dict[str, Any]:
    """``current`` entries plus every (type, version) of the code not yet in it."""
    entries = dict(current)
    for module in CONTRACT_MODULES:
        for cls in module.EVENTS:
            entries.setdefault(f"{cls.TYPE}@v{cls.VERSION}", resolved(cls))
    return entries


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_type(option) for option in schema["anyOf"])
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    if schema.get("type") == "array":
        return f"list of {_type(schema.get('items', {}))}"
    kind = schema.get("type", "any")
    return f"{kind} ({schema['format']})" if "format" in schema else str(kind)


def catalogue(doc: dict[str, Any]) -> str:
    schemas = doc["components"]["schemas"]
    lines = [
        "# Event catalogue",
        "",
        "Generated from [`asyncapi.json`](asyncapi.json) by `docs/event_catalogue.py`; do not edit.",
        "",
        doc["info"]["description"],
        "",
        "Every message is the envelope (event id, type, schema version, stream id and version, "
        "occurred-at, correlation and causation ids, actor, hash-chain link) with the payload "
        "below under `data`. Money is integer minor units (`*_minor`), rates are basis points "
        "(`*_bp`).",
        "",
    ]
    for publisher, channel in doc["channels"].items():
        lines += [f"## `{channel['address']}` ({publisher})", ""]
        for name in channel["messages"]:
            message = doc["components"]["messages"][name]
            payload = schemas[f"{name}Payload"]
            required = set(payload.get("required", []))
            lines += [f"### {name} (v{message['x-schema-version']})", "", message["summary"], "",
                      "| field | type | required |", "|---|---|---|"]
            for field, schema in payload.get("properties", {}).items():
                lines.append(f"| `{field}` | {_type(schema)} | {'yes' if field in required else ''} |")
            lines.append("")
    return "\n".join(lines)


def outputs() -> dict[Path, str]:
    doc = document()
    known = orjson.loads(PUBLISHED.read_bytes()) if PUBLISHED.exists() else {}
    return {ASYNCAPI: _json(doc), CATALOGUE: catalogue(doc), PUBLISHED: _json(published(known))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    stale = [path for path, text in outputs().items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run .venv/bin/python docs/event_catalogue.py",
                  file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs().items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
