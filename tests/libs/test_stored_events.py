"""Stored events read back without validating them again: exactly what validation would build."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ValidationError

from libs.events import DomainEvent, EventRegistry, default_registry
from libs.events.base import TOLERANT
from libs.events.codec import canonical_json
from libs.events.credit import InvoiceIssued
from libs.events.stored import reader
from tests.libs.test_event_contracts import PUBLISHED, sample_of


def _same(read: Any, validated: Any, where: str) -> None:
    """Equal, and of the same type all the way down (a date stays a date, a line a model)."""
    assert type(read) is type(validated), where
    if isinstance(validated, BaseModel):
        assert list(read.__dict__) == list(validated.__dict__), where
        assert read.model_fields_set == validated.model_fields_set, where
        assert type(read.model_fields_set) is type(validated.model_fields_set), where
        assert read.__pydantic_extra__ == validated.__pydantic_extra__, where
        for name, value in validated.__dict__.items():
            _same(read.__dict__[name], value, f"{where}.{name}")
    elif isinstance(validated, list):
        assert len(read) == len(validated), where
        for n, (left, right) in enumerate(zip(read, validated, strict=True)):
            _same(left, right, f"{where}[{n}]")
    else:
        assert read == validated, where
        if hasattr(validated, "tzinfo"):
            assert type(read.tzinfo) is type(validated.tzinfo), where


def _variants(cls: type[DomainEvent]) -> list[dict[str, Any]]:
    """Every field set; with fields a newer publisher added (here and in nested objects); with
    only the required fields (defaults filled); with every optional field None."""
    full = sample_of(cls).payload()
    extra = {**full, "added_later": 1}
    for name, value in full.items():
        if isinstance(value, dict):
            extra[name] = {**value, "added_later": 2}
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            extra[name] = [{**item, "added_later": 3} for item in value]
    required = {name: value for name, value in full.items() if cls.model_fields[name].is_required()}
    nones = {**full, **{name: None for name, field in cls.model_fields.items()
                        if not field.is_required() and field.default is None}}
    return [full, extra, required, nones]


@pytest.mark.parametrize("cls", PUBLISHED, ids=lambda cls: cls.__name__)
def test_every_published_event_reads_back_as_validation_builds_it(cls: type[DomainEvent]) -> None:
    assert reader(cls) is not None, "every published event takes the fast path"
    registry = default_registry()
    for payload in _variants(cls):
        stored = canonical_json(payload).decode()
        read = registry.decode_stored(cls.TYPE, cls.VERSION, stored)
        validated = cls.model_validate(payload, context=TOLERANT)
        _same(read, validated, cls.__name__)
        assert read == validated
        assert canonical_json(read.payload()) == canonical_json(validated.payload())


def test_a_payload_that_does_not_fit_is_validated_and_refused_as_decode_refuses_it() -> None:
    registry = default_registry()
    good = sample_of(InvoiceIssued).payload()
    missing = {name: value for name, value in good.items() if name != "order_id"}
    not_a_date = {**good, "due_on": "soon"}
    bad_line = {**good, "lines": [{"sku": "A"}]}
    for payload in (missing, not_a_date, bad_line):
        with pytest.raises(ValidationError):
            registry.decode_stored(InvoiceIssued.TYPE, InvoiceIssued.VERSION, canonical_json(payload))
    # What validation accepts and the fast path does not build, validation builds.
    compact_date = {**good, "due_on": "2026-03-31T00:00:00"}
    read = registry.decode_stored(InvoiceIssued.TYPE, InvoiceIssued.VERSION, canonical_json(compact_date))
    assert isinstance(read, InvoiceIssued) and read.due_on == date(2026, 3, 31)


class _Renamed(DomainEvent):
    TYPE: ClassVar[str] = "TestRenamed"
    VERSION: ClassVar[int] = 2

    partner_id: str
    on: date


def test_an_older_schema_version_is_upcast_first() -> None:
    registry = EventRegistry([_Renamed], {("TestRenamed", 1): lambda old: {
        "partner_id": old["partner"], "on": old["on"]}})
    read = registry.decode_stored("TestRenamed", 1, '{"on":"2026-01-02","partner":"p1"}')
    assert read == _Renamed(partner_id="p1", on=date(2026, 1, 2))
    assert type(read.on) is date  # type: ignore[attr-defined]
