"""FHIR's JSON types, checked before the fhir.resources models read a document.

FHIR's JSON format (https://hl7.org/fhir/R4/json.html) writes a ``boolean`` as JSON
``true`` or ``false``, an ``integer``, ``positiveInt`` or ``unsignedInt`` as a JSON number
without a decimal point, a ``decimal`` as a JSON number, and every other primitive (dates,
times, codes, strings, ids, uris) as a JSON string, each under its JSON name. The models
are pydantic's, in its lax mode, and ignore ``strict``: they read ``"birthDate": 0`` as 1
January 1970, a number of seconds as a ``dateTime``, ``"true"`` or ``1`` as true, ``"2"``
and 2.0 as 2, and take a field's Python name too (``birthDate__ext`` for ``_birthDate``).
A child's date of birth sent as a number is an error to refuse, not a date to invent, so
each element's JSON type is checked against the model's declared type first, the model
guiding the walk (an element it does not know is left to it to refuse).
"""

from __future__ import annotations

import datetime
import decimal
import types
import typing
import uuid
from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import AnyUrl

Loc = tuple[str | int, ...]
# What an element holds: a JSON kind for a primitive, or the model of a complex one
# (None for a resource, whose model its resourceType names).
Kind = str | type[Any] | None
_NUMBER = "a number"
_WHOLE = "a whole number"
_BOOLEAN = "true or false"
_STRING = "a string"
_RESOURCE = "Resource"
_TEXT = (str, bytes, datetime.date, datetime.datetime, datetime.time, uuid.UUID)


def type_problem(doc: Mapping[str, Any], model: type[Any]) -> tuple[Loc, str] | None:
    """The first element of ``doc`` (a resource or element read as ``model``) whose JSON
    type is not its FHIR type: where it is, and what it should be."""
    kinds = _kinds(model)
    for key, value in doc.items():
        kind = kinds.get(key, _UNKNOWN)
        if kind is _UNKNOWN:
            continue  # not an element of the model: it refuses that
        if kind is _PYTHON_NAME:
            return (key,), "FHIR R4 JSON: this is not an element's JSON name"
        if value is None:
            continue
        if isinstance(value, list):
            for i, item in enumerate(value):
                problem = _item_problem(item, kind, (key, i))
                if problem is not None:
                    return problem
            continue
        problem = _item_problem(value, kind, (key,))
        if problem is not None:
            return problem
    return None


_UNKNOWN: Any = object()
_PYTHON_NAME: Any = object()  # a field's name in the model where its JSON name differs


def _item_problem(value: Any, kind: Kind, loc: Loc) -> tuple[Loc, str] | None:
    if value is None:
        return None  # a repeated primitive's null, beside its extension
    if isinstance(kind, str):
        if _is(value, kind):
            return None
        return loc, f"FHIR R4 JSON: this element must be {kind}"
    if not isinstance(value, Mapping):
        return None  # not an object: the model refuses it
    model = kind if kind is not None else _resource_model(value)
    if model is None:
        return None
    inner = type_problem(value, model)
    return None if inner is None else ((*loc, *inner[0]), inner[1])


def _is(value: Any, kind: str) -> bool:
    if kind == _BOOLEAN:
        return isinstance(value, bool)
    if kind == _WHOLE:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def _resource_model(doc: Mapping[str, Any]) -> type[Any] | None:
    name = doc.get("resourceType")
    if not isinstance(name, str):
        return None
    try:
        return get_fhir_model_class(name)
    except ValueError:
        return None  # a resourceType FHIR does not define: the model refuses it


def _kinds(model: type[Any]) -> dict[str, Kind]:
    """Each element the model reads, by its JSON name, and what it holds; and the fields'
    Python names where the JSON name differs (``birthDate__ext`` for ``_birthDate``): the
    models take either, FHIR's JSON only the JSON name."""
    kinds = _KINDS.get(model)
    if kinds is None:
        kinds = {}
        for name, field in model.model_fields.items():
            kind = _kind(field.annotation)
            if kind is not _UNKNOWN:
                kinds[field.alias or name] = kind
        for name, field in model.model_fields.items():
            if field.alias is not None and field.alias != name:
                kinds.setdefault(name, _PYTHON_NAME)
        _KINDS[model] = kinds
    return kinds


_KINDS: dict[type[Any], dict[str, Kind]] = {}  # filled as models are met (a few dozen)


def _kind(annotation: Any) -> Any:
    """What an element of this annotation holds; _UNKNOWN if it cannot be told."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _kind(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list):
        kinds = [_kind(a) for a in typing.get_args(annotation) if a is not type(None)]
        return kinds[0] if all(k is kinds[0] for k in kinds) else _UNKNOWN  # str | AnyUrl
    if annotation is bool:
        return _BOOLEAN
    if annotation is int:
        return _WHOLE  # FHIR's integer has no decimal point: 2.0 is no integer
    if annotation in (float, decimal.Decimal):
        return _NUMBER
    if annotation in _TEXT or (isinstance(annotation, type) and issubclass(annotation, AnyUrl)):
        return _STRING
    klass = getattr(annotation, "get_model_klass", None)
    if klass is None:
        return _UNKNOWN
    model = klass()
    return None if model.__name__ == _RESOURCE else model
