"""Events read back from a store that validated them: built without validating them again.

A rebuild reads every event a store (or the projections' archive) holds, and
every one of them passed ``EventRegistry.decode`` (or was built by the code)
before it was stored, as canonical JSON of ``model_dump(mode="json")``. Checking
each of them again costs most of a rebuild: the pydantic validation of each
model, and the tolerant read's Python validator on each nested model too.

``reader(cls)`` builds the same instance ``cls.model_validate(payload,
context=TOLERANT)`` would, from the JSON a stored event holds, by converting
only what JSON cannot carry: ISO dates become ``date``, nested payloads become
their value objects, a rarer type (a timestamp) is validated alone; unknown
fields are dropped and defaults filled as the tolerant read does. Every other
value (``str``, ``int``, ``bool``, ``Literal``) is taken as it is: that is the
trust. A class that validates or renames anything itself (a validator, an
alias, a constraint) gets no reader, and a payload that does not fit (a
required field missing, a date that is not ISO text) raises ``ValueError``:
the caller validates those the ordinary way.
``tests/libs/test_stored_events.py`` holds every registered class to
``model_validate``'s result, field by field and type by type.
"""

from __future__ import annotations

import copy
import functools
import types
import typing
from collections.abc import Callable
from datetime import date
from typing import Any, Literal

from pydantic import TypeAdapter
from pydantic.fields import FieldInfo

from libs.events.base import Strict

Convert = Callable[[Any], Any]
Reader = Callable[[dict[str, Any]], Any]

_set = object.__setattr__
_AS_IS = (str, int, bool)


class NotTrusted(ValueError):
    """The payload does not fit its class as stored events do: validate it instead."""


class _Unsupported(Exception):
    """The class has a field (or a feature) the reader does not build."""


def _to_date(value: Any) -> date:
    if type(value) is not str:
        raise NotTrusted(f"not an ISO date: {value!r}")
    return date.fromisoformat(value)


def _converter(annotation: Any) -> Convert | None:
    """How to bring a JSON value to ``annotation`` (None: as it is)."""
    if annotation in _AS_IS:
        return None
    if annotation is date:
        return _to_date
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return None
    if origin in (types.UnionType, typing.Union) and len(args) == 2 and type(None) in args:
        inner = _converter(next(arg for arg in args if arg is not type(None)))
        if inner is None:
            return None
        return lambda value: None if value is None else inner(value)
    if origin is list and len(args) == 1:
        item = _converter(args[0])
        if item is None:
            return _as_list
        return lambda value: [item(each) for each in _as_list(value)]
    if isinstance(annotation, type) and issubclass(annotation, Strict):
        return _build(annotation)
    if origin is None:  # another plain type (a timestamp): pydantic's own validation of it
        return typing.cast(Convert, TypeAdapter(annotation).validate_python)
    raise _Unsupported(repr(annotation))


def _as_list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise NotTrusted(f"not a list: {value!r}")
    return value


def _default(field: FieldInfo) -> Callable[[], Any]:
    """A field's default, fresh where pydantic's would be (a factory's result, a copy when mutable)."""
    if field.default_factory is not None:
        if field.default_factory_takes_validated_data:
            raise _Unsupported("a default factory that takes the data")
        return typing.cast(Callable[[], Any], field.default_factory)
    value = field.default
    try:
        hash(value)
    except TypeError:
        return lambda: copy.deepcopy(value)
    return lambda: value


def _check_plain(cls: type[Strict]) -> None:
    """Only the tolerant read's own validator, no aliases, no post-init: nothing that changes values."""
    decorators = cls.__pydantic_decorators__
    if (set(decorators.model_validators) != {"_drop_unknown"} or decorators.field_validators
            or decorators.validators or decorators.root_validators or cls.__pydantic_post_init__
            or cls.__pydantic_root_model__ or cls.model_config.get("extra") != "forbid"):
        raise _Unsupported(f"{cls.__name__} validates or builds its values itself")
    for field in cls.model_fields.values():
        if field.alias or field.validation_alias or field.metadata:
            raise _Unsupported(f"{cls.__name__} has aliases or constrained fields")


@functools.cache
def _build(cls: type[Strict]) -> Reader:
    _check_plain(cls)
    fields = [(name, _converter(field.annotation), None if field.is_required() else _default(field))
              for name, field in cls.model_fields.items()]
    names = set(cls.model_fields)

    def build(payload: dict[str, Any]) -> Any:
        if type(payload) is not dict:
            raise NotTrusted(f"not an object: {payload!r}")
        values: dict[str, Any] = {}  # in the fields' order, as validation fills it
        for name, convert, default in fields:
            if name in payload:
                value = payload[name]
                values[name] = value if convert is None else convert(value)
            elif default is None:
                raise NotTrusted(f"{cls.__name__} without {name}")
            else:
                values[name] = default()
        model = cls.__new__(cls)  # what model_construct does, without its per-field lookups
        _set(model, "__dict__", values)
        _set(model, "__pydantic_fields_set__", names.intersection(payload))
        _set(model, "__pydantic_extra__", None)
        _set(model, "__pydantic_private__", None)
        return model

    return build


@functools.cache
def reader(cls: type[Strict]) -> Reader | None:
    """Builds ``cls`` from a stored payload without validating it; None when the class has a
    field or a feature this does not build (validate those)."""
    try:
        return _build(cls)
    except _Unsupported:
        return None
