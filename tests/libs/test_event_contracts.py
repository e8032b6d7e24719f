"""The event contracts: complete, unique, immutable, strict, exact money, and upcastable."""

from __future__ import annotations

import importlib
import pkgutil
import types
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import pytest
from pydantic import AwareDatetime, BaseModel, ValidationError

import libs.events
from libs.events import CONTRACT_MODULES, DomainEvent, Envelope, EventRegistry, default_registry
from libs.events.base import format_timestamp
from libs.events.codec import canonical_json
from libs.events.credit import InvoiceIssued
from libs.events.registry import UnknownEventType
from libs.events.values import InvoiceLine, ValueObject

M = TypeVar("M", bound=BaseModel)

ENVELOPE_FIELDS = {
    "event_id", "event_type", "schema_version", "stream_id", "stream_type", "stream_version",
    "occurred_at", "correlation_id", "causation_id", "actor", "position", "stream_hash",
}


# -- discovery -------------------------------------------------------------------


def _import_every_contract_module() -> None:
    for info in pkgutil.iter_modules(libs.events.__path__, prefix="libs.events."):
        importlib.import_module(info.name)


def _subclasses(cls: type[Any]) -> Iterator[type[Any]]:
    subs: list[type[Any]] = cls.__subclasses__()
    for sub in subs:
        yield sub
        yield from _subclasses(sub)


def _defined_in_libs_events(base: type[Any]) -> list[Any]:
    _import_every_contract_module()
    found = {sub for sub in _subclasses(base) if sub.__module__.startswith("libs.events.")}
    return sorted(found, key=lambda cls: (cls.__module__, cls.__name__))


PUBLISHED: list[type[DomainEvent]] = [cls for module in CONTRACT_MODULES for cls in module.EVENTS]
DEFINED_EVENTS: list[type[DomainEvent]] = _defined_in_libs_events(DomainEvent)
VALUE_OBJECTS: list[type[ValueObject]] = _defined_in_libs_events(ValueObject)
ALL_MODELS: list[type[BaseModel]] = [*PUBLISHED, *VALUE_OBJECTS]


def _ids(classes: list[type]) -> list[str]:
    return [cls.__name__ for cls in classes]


# -- a sample of anything, from its annotations ------------------------------------


def _sample(annotation: Any, name: str) -> Any:
    """A non-default, non-empty value for a field, so round trips exercise every field."""
    origin = get_origin(annotation)
    if origin is Literal:
        return get_args(annotation)[-1]
    if origin in (Union, types.UnionType):
        return _sample(next(arg for arg in get_args(annotation) if arg is not type(None)), name)
    if origin is list:
        (item,) = get_args(annotation)
        return [_sample(item, name), _sample(item, name)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sample_of(annotation)
    if annotation is AwareDatetime or annotation is datetime:
        return datetime(2026, 4, 2, 9, 30, 15, 250000, tzinfo=UTC)
    if annotation is date:
        return date(2026, 3, 31)
    if annotation is bool:
        return True
    if annotation is int:
        return 250 if name.endswith("_bp") else 123_456
    if annotation is str:
        return "USD" if name == "currency" else f"{name}-7"
    raise AssertionError(f"no sample for {name}: {annotation!r}")


def sample_of(cls: type[M]) -> M:
    return cls(**{name: _sample(f.annotation, name) for name, f in cls.model_fields.items()})


def envelope_for(
    event: DomainEvent, *, data: str | None = None, version: int | None = None
) -> Envelope:
    return Envelope(
        event_id=uuid.uuid4(),
        event_type=event.TYPE,
        schema_version=event.VERSION if version is None else version,
        stream_id="stream-1",
        stream_type="test",
        stream_version=1,
        occurred_at=format_timestamp(datetime(2026, 4, 2, tzinfo=UTC)),
        correlation_id=uuid.uuid4(),
        causation_id=None,
        actor="tester",
        data=canonical_json(event.payload()).decode() if data is None else data,
    )


def _leaf_types(annotation: Any) -> Iterator[Any]:
    """Every type an annotation can hold, descending into unions, lists and nested models."""
    origin = get_origin(annotation)
    if origin is Literal:
        yield from (type(arg) for arg in get_args(annotation))
    elif origin is not None:
        for arg in get_args(annotation):
            yield from _leaf_types(arg)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for field in annotation.model_fields.values():
            yield from _leaf_types(field.annotation)
    else:
        yield annotation


def _all_field_names(model: type[BaseModel]) -> Iterator[str]:
    for name, field in model.model_fields.items():
        yield name
        for leaf in _nested_models(field.annotation):
            yield from _all_field_names(leaf)


def _nested_models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from _nested_models(arg)


# -- completeness and uniqueness -----------------------------------------------------


def test_every_event_type_name_is_unique() -> None:
    counts = Counter(cls.TYPE for cls in PUBLISHED)
    assert [name for name, n in counts.items() if n > 1] == []


def test_every_event_defined_in_libs_events_is_published_and_registered() -> None:
    registry = default_registry()
    assert sorted(_ids(DEFINED_EVENTS)) == sorted(_ids(PUBLISHED))
    for cls in DEFINED_EVENTS:
        assert cls.TYPE in registry
        assert registry.class_for(cls.TYPE) is cls


@pytest.mark.parametrize("module", CONTRACT_MODULES, ids=lambda m: m.__name__)
def test_each_module_publishes_only_its_own_events(module: types.ModuleType) -> None:
    assert len(set(module.EVENTS)) == len(module.EVENTS)
    assert all(cls.__module__ == module.__name__ for cls in module.EVENTS)


@pytest.mark.parametrize("cls", PUBLISHED, ids=_ids(PUBLISHED))
def test_wire_name_is_the_class_name_and_documented(cls: type[DomainEvent]) -> None:
    assert cls.TYPE == cls.__name__
    assert cls.VERSION == 1
    assert cls.__doc__
    summary, *_ = cls.__doc__.strip().split("\n\n", 1)
    # the catalogue (docs/events.md) and AsyncAPI show the first line as the event's summary
    assert "\n" not in summary.strip() and summary.strip().endswith(".")


# -- round trip ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", PUBLISHED, ids=_ids(PUBLISHED))
def test_event_round_trips_through_canonical_json_and_the_registry(
    cls: type[DomainEvent],
) -> None:
    event = sample_of(cls)
    envelope = envelope_for(event)

    decoded = default_registry().decode(envelope)

    assert type(decoded) is cls
    assert decoded == event
    assert canonical_json(decoded.payload()).decode() == envelope.data


def test_payload_carries_dates_as_iso_text_and_money_as_integers() -> None:
    line = InvoiceLine(
        sku="PUMP-7", category="pumps", qty=3, unit_price_minor=12_345, line_total_minor=37_035
    )
    invoice = InvoiceIssued(
        invoice_id="inv-1", order_id="ord-1", partner_id="p-1", dispatch_id="d-1",
        lines=[line], total_minor=37_035, issued_on=date(2026, 4, 1),
        due_on=date(2026, 5, 1), region="east", tier="A",
    )

    raw = canonical_json(invoice.payload())

    assert b'"due_on":"2026-05-01"' in raw
    assert b'"total_minor":37035' in raw
    assert b'"currency":"CNY"' in raw


# -- immutability and strictness --------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_MODELS, ids=_ids(ALL_MODELS))
def test_instances_are_frozen(cls: type[BaseModel]) -> None:
    instance = sample_of(cls)
    first = next(iter(cls.model_fields))
    with pytest.raises(ValidationError):
        setattr(instance, first, getattr(instance, first))


@pytest.mark.parametrize("cls", ALL_MODELS, ids=_ids(ALL_MODELS))
def test_unknown_fields_are_rejected(cls: type[BaseModel]) -> None:
    payload = sample_of(cls).model_dump(mode="json")
    with pytest.raises(ValidationError, match="extra_forbidden"):
        cls.model_validate({**payload, "surprise": 1})


def test_unknown_fields_inside_value_objects_are_rejected() -> None:
    from libs.events.orders import OrderPlaced

    payload = sample_of(OrderPlaced).payload()
    payload["lines"][0]["discount_minor"] = 5
    with pytest.raises(ValidationError):
        OrderPlaced.model_validate(payload)


# -- exact money, no identity in payloads ----------------------------------------------


@pytest.mark.parametrize("cls", PUBLISHED, ids=_ids(PUBLISHED))
def test_no_float_anywhere(cls: type[DomainEvent]) -> None:
    leaves = set(_leaf_types(cls))
    assert float not in leaves
    assert Decimal not in leaves


@pytest.mark.parametrize("cls", ALL_MODELS, ids=_ids(ALL_MODELS))
def test_money_and_rates_are_integers(cls: type[BaseModel]) -> None:
    for name, field in cls.model_fields.items():
        if name.endswith(("_minor", "_bp")):
            assert set(_leaf_types(field.annotation)) <= {int, type(None)}, name


@pytest.mark.parametrize("cls", PUBLISHED, ids=_ids(PUBLISHED))
def test_events_with_money_name_their_currency(cls: type[DomainEvent]) -> None:
    if any(name.endswith("_minor") for name in _all_field_names(cls)):
        assert "currency" in cls.model_fields


@pytest.mark.parametrize("cls", PUBLISHED, ids=_ids(PUBLISHED))
def test_identity_and_causality_stay_in_the_envelope(cls: type[DomainEvent]) -> None:
    assert ENVELOPE_FIELDS.isdisjoint(_all_field_names(cls))


# -- upcasting ----------------------------------------------------------------------------


class ParcelLabelled(DomainEvent):
    """Test-only v2: v1 had ``ship_to: "region/city"``; v2 splits it and adds a carrier."""

    TYPE = "TestParcelLabelled"
    VERSION = 2

    parcel_id: str
    ship_to_region: str
    ship_to_city: str
    carrier: str = "unassigned"


def parcel_labelled_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    rest = {key: value for key, value in payload.items() if key != "ship_to"}
    region, _, city = payload["ship_to"].partition("/")
    return {**rest, "ship_to_region": region, "ship_to_city": city}


@pytest.fixture
def registry_with_v2() -> EventRegistry:
    upcasters = {(ParcelLabelled.TYPE, 1): parcel_labelled_v1_to_v2}
    return default_registry().merged(EventRegistry([ParcelLabelled], upcasters))


def test_a_v1_payload_is_read_as_the_current_v2_event(registry_with_v2: EventRegistry) -> None:
    v1 = envelope_for(
        ParcelLabelled(parcel_id="x", ship_to_region="x", ship_to_city="x"),
        data=canonical_json({"parcel_id": "parcel-9", "ship_to": "east/Shanghai"}).decode(),
        version=1,
    )

    decoded = registry_with_v2.decode(v1)

    assert decoded == ParcelLabelled(
        parcel_id="parcel-9", ship_to_region="east", ship_to_city="Shanghai", carrier="unassigned"
    )


def test_a_current_payload_is_not_upcast(registry_with_v2: EventRegistry) -> None:
    event = ParcelLabelled(
        parcel_id="p", ship_to_region="west", ship_to_city="Chengdu", carrier="SF"
    )
    assert registry_with_v2.decode(envelope_for(event)) == event


def test_a_payload_newer_than_the_code_is_refused(registry_with_v2: EventRegistry) -> None:
    event = ParcelLabelled(parcel_id="p", ship_to_region="west", ship_to_city="Chengdu")
    with pytest.raises(UnknownEventType):
        registry_with_v2.decode(envelope_for(event, version=3))


def test_an_upcaster_without_a_newer_class_version_is_refused() -> None:
    with pytest.raises(ValueError, match="no newer class version"):
        EventRegistry([ParcelLabelled], {(ParcelLabelled.TYPE, 2): parcel_labelled_v1_to_v2})


def test_the_default_registry_knows_no_test_only_event() -> None:
    assert ParcelLabelled.TYPE not in default_registry()
