"""The JSON Schema 2020-12 registry: loading, lookup, and violations that name the path and
rule but never the offending value."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from consent.processor.access_back import ACCESS_BACK
from deploy.devstack.demo import scenario
from services.backbone.errors import ConfigurationError, SchemaViolation, UnknownEventType
from services.backbone.schemas import DEFAULT_DIR, EventSchema, SchemaRegistry
from tests.unit import event_samples
from tests.unit.factories import (
    ATTENDANCE,
    PLAN_ENDED,
    PLAN_STARTED,
    attendance_data,
    plan_ended_data,
    plan_started_data,
)


def test_loads_every_shipped_event_type(schemas: SchemaRegistry) -> None:
    assert schemas.event_types == sorted(
        [
            "education.attendance.concern",
            "education.exclusion.recorded",
            "education.missing_education.reported",
            "education.safeguarding.concern",
            "health.appointment.was_not_brought",
            "health.safeguarding.concern",
            ATTENDANCE,
            ACCESS_BACK,
            "infoshare.recall.requested",
            "infoshare.record.recalled",
            "socialcare.assessment.completed",
            "socialcare.case.closed",
            PLAN_ENDED,
            PLAN_STARTED,
            "socialcare.looked_after.ended",
            "socialcare.looked_after.started",
            "socialcare.referral.received",
        ]
    )


@pytest.mark.parametrize("event_type", [ATTENDANCE, PLAN_ENDED, PLAN_STARTED])
def test_looks_up_by_type_and_by_id(schemas: SchemaRegistry, event_type: str) -> None:
    schema = schemas.get(event_type)
    assert schema.version == 1
    assert schema.uri.endswith(f"/{event_type}/v1.json")
    assert schemas.by_uri(schema.uri) is schema


def test_unknown_types_and_ids_are_refused(schemas: SchemaRegistry) -> None:
    with pytest.raises(UnknownEventType):
        schemas.get("education.exclusion")
    with pytest.raises(UnknownEventType):
        schemas.get(ATTENDANCE, 2)
    with pytest.raises(UnknownEventType):
        schemas.by_uri("https://infoshare.example/schemas/nothing/v1.json")


def test_scenario_data_conforms(schemas: SchemaRegistry, authority_name: str) -> None:
    for child in (scenario.ON_PLAN, scenario.NOT_ON_PLAN):
        schemas.get(ATTENDANCE).validate(attendance_data(child))
        schemas.get(PLAN_STARTED).validate(plan_started_data(child, authority_name=authority_name))
        schemas.get(PLAN_ENDED).validate(plan_ended_data(child, authority_name=authority_name))


def violation(schemas: SchemaRegistry, data: Any, event_type: str = ATTENDANCE) -> SchemaViolation:
    with pytest.raises(SchemaViolation) as info:
        schemas.get(event_type).validate(data)
    return info.value


def with_(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(attendance_data(scenario.ON_PLAN))
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[last] = value
    return data


def without(path: str) -> dict[str, Any]:
    data = copy.deepcopy(attendance_data(scenario.ON_PLAN))
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    del node[last]
    return data


@pytest.mark.parametrize(
    ("data", "path", "rule", "says"),
    [
        (with_("subject.nhs_number", "99900001234"), "subject.nhs_number", "pattern", "pattern"),
        (with_("subject.nhs_number", 9990000123), "subject.nhs_number", "type", "'string'"),
        (with_("subject.date_of_birth", "2016-02-30"), "subject.date_of_birth", "format", "date"),
        (with_("subject.postcode", "ns1 4ap"), "subject.postcode", "pattern", "pattern"),
        (
            with_("attendance.setting_type", "pharmacy-in-leeds"),
            "attendance.setting_type",
            "enum",
            "emergency_department",
        ),
        (
            with_("attendance.arrival_time", "20/11/2026 21:14"),
            "attendance.arrival_time",
            "format",
            "date-time",
        ),
        (without("subject.nhs_number"), "subject", "required", "'nhs_number' is a required"),
        (with_("subject.shoe_size", "5"), "subject", "additionalProperties", "'shoe_size'"),
        ([1, 2], "(root)", "type", "'object'"),
    ],
)
def test_a_violation_names_path_and_rule_never_the_value(
    schemas: SchemaRegistry, data: Any, path: str, rule: str, says: str
) -> None:
    error = violation(schemas, data)
    assert (error.path, error.rule) == (path, rule)
    message = str(error)
    assert message.startswith(f"{ATTENDANCE} v1: {path}: ")
    assert says in message
    for value in ("99900001234", "9990000123", "2016-02-30", "ns1 4ap", "pharmacy", "20/11"):
        assert value not in message


def test_the_shallowest_problem_is_reported_first(schemas: SchemaRegistry) -> None:
    data = without("attendance")
    data["subject"]["nhs_number"] = "1"
    assert violation(schemas, data).path == "(root)"


@given(st.from_regex(r"\A[0-9]{11,16}\Z") | st.from_regex(r"\A[A-Za-z]{6,12}[0-9]\Z"))
def test_no_bad_nhs_number_reaches_the_message(schemas: SchemaRegistry, bad: str) -> None:
    error = violation(schemas, with_("subject.nhs_number", bad))
    assert error.path == "subject.nhs_number"
    assert bad not in str(error)


def write_schema(root: Path, event_type: str, doc: Any) -> None:
    (root / event_type).mkdir(parents=True, exist_ok=True)
    text = doc if isinstance(doc, str) else json.dumps(doc)
    (root / event_type / "v1.json").write_text(text, encoding="utf-8")


def minimal(event_type: str) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://infoshare.example/schemas/{event_type}/v1.json",
        "type": "object",
    }


def test_loads_a_directory_of_its_own(tmp_path: Path) -> None:
    write_schema(tmp_path, "education.attendance", minimal("education.attendance"))
    (tmp_path / "education.attendance" / "notes.json").write_text("{}", encoding="utf-8")
    assert SchemaRegistry.load(tmp_path).event_types == ["education.attendance"]


def test_refuses_a_missing_or_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        SchemaRegistry.load(tmp_path / "absent")
    with pytest.raises(ConfigurationError, match="no schemas found"):
        SchemaRegistry.load(tmp_path)


@pytest.mark.parametrize(
    "doc",
    ["{not json", {"type": "no-such-type"}, {"type": "object", "minProperties": -1}],
    ids=["not-json", "bad-type", "bad-keyword"],
)
def test_refuses_an_invalid_schema(tmp_path: Path, doc: Any) -> None:
    write_schema(tmp_path, "x.y", doc)
    with pytest.raises(ConfigurationError, match="not a valid JSON Schema 2020-12"):
        SchemaRegistry.load(tmp_path)


def test_refuses_an_id_that_does_not_match_the_file(tmp_path: Path) -> None:
    write_schema(tmp_path, "x.y", minimal("x.z"))
    with pytest.raises(ConfigurationError, match=r"\$id must end with /x.y/v1.json"):
        SchemaRegistry.load(tmp_path)


# --- The fast validator against the reference one, on every schema ---------------------------

SCHEMA_FILES = sorted(DEFAULT_DIR.glob("*/v*.json"))
ON_DISK = [(p.parent.name, int(p.stem[1:])) for p in SCHEMA_FILES]
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**12),
    st.floats(allow_nan=False, allow_infinity=False),  # not JSON: orjson reads neither
    st.text(max_size=12),
    st.sampled_from(
        ["2026-11-20T21:14:00Z", "2026-11-20", "2026-13-01", "RVR01", "9990000123", "injury", ""]
    ),
    st.builds(dict),  # a new one each time: a later change must not alter the strategy
    st.builds(list),
)
# Values for each format: well formed ones and near misses.
_FORMATS = {
    "date": st.dates().map(date.isoformat)
    | st.sampled_from(
        ["2026-02-30", "2026-13-01", "2026-1-01", "20261120", "2026-11-20T09:00:00Z", "2026-11-20 "]
    ),
    "date-time": st.builds(
        datetime.isoformat,
        st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])),
        sep=st.sampled_from("Tt"),
    )
    | st.sampled_from(
        [
            "2026-11-20t21:14:00z",
            "2026-11-20T21:14:00",
            "2026-11-20 21:14:00Z",
            "2026-11-20T21:14Z",
            "2026-11-20T25:14:00Z",
            "2026-11-20T21:14:00+24:00",
            "2026-11-20T21:14:00.123456789Z",
        ]
    ),
    "email": st.emails().map(str)
    | st.sampled_from(["dsl@oakfield.example", "@", "a@", "no-at-sign", "a b@c.example"]),
    "uri": st.sampled_from(["https://example.org/a?b=c", "urn:x", "not a uri", "/relative"]),
}
# Where the reference is laxer than jsonschema-rs, so that it alone accepts (the product
# then accepts too: validate() asks the reference before it refuses): jsonschema checks an
# email only for an @ and a uri not at all, and Python's $ also matches before a final
# newline, where ECMA 262's (the one JSON Schema means) does not.
_LAX_FORMATS = frozenset({"email", "uri"})


def _relaxed(node: Any) -> Any:
    """``node`` with the reference's laxities: no email or uri format, a pattern's final $
    allowing a newline before it."""
    if isinstance(node, list):
        return [_relaxed(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _relaxed(v) for k, v in node.items() if k != "format" or v not in _LAX_FORMATS}
    pattern = out.get("pattern")
    if isinstance(pattern, str) and pattern.endswith("$"):
        out["pattern"] = pattern[:-1] + "\\n?$"
    return out


def _near_miss(value: Any) -> Any:
    return value.upper() + " " if isinstance(value, str) else str(value)


def _strings(schema: Mapping[str, Any]) -> st.SearchStrategy[str]:
    """Strings for a string place: in or near its pattern, its format or its lengths."""
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    options = [st.text(max_size=(high or 20) + 2)]
    if low:
        options.append(st.text(min_size=low, max_size=low))
    if high is not None and high <= 300:
        options.append(st.text(min_size=high, max_size=high + 1))
    if "pattern" in schema:
        options.append(st.from_regex(schema["pattern"], fullmatch=True).flatmap(_nudged_or_not))
    if schema.get("format") in _FORMATS:
        options.append(_FORMATS[schema["format"]])
    return st.one_of(options)


def _numbers(schema: Mapping[str, Any]) -> st.SearchStrategy[float]:
    """Numbers for a numeric place: at, just in and just past its bounds, off its step."""
    options = [st.integers(-10, 10**6), st.floats(-1e6, 1e6, allow_nan=False)]
    edges = [schema[k] + d for k in ("minimum", "maximum") if k in schema for d in (-1, 0, 1)]
    if "multipleOf" in schema:
        step = schema["multipleOf"]
        edges += [step * 3, step * 3 + step / 3, step / 2]
    return st.one_of([*options, st.sampled_from(edges)] if edges else options)


@st.composite
def _nudged(draw: st.DrawFn, value: Any) -> Any:
    """``value`` changed a little: a string with one character replaced, dropped, added or
    its case changed, a number moved by a fraction or one. Most break one rule of a valid
    value (its pattern, format, enum or step) and keep the rest."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    if not isinstance(value, str):
        return value + draw(st.sampled_from([-1, -0.5, 1 / 3, 0.5, 1]))
    i = draw(st.integers(0, len(value)))
    # Characters patterns and formats refuse most, and any (UTF-8 has no lone surrogates).
    char = draw(st.sampled_from("x-: \n0Zé") | st.characters(exclude_categories=["Cs"]))
    how = draw(st.sampled_from(["replace", "drop", "insert", "case"]))
    if how == "replace" and i < len(value):
        return value[:i] + char + value[i + 1 :]
    if how == "drop" and value:
        return value[: max(i - 1, 0)] + value[max(i, 1) :]
    if how == "case":
        return value.swapcase()
    return value[:i] + char + value[i:]


def _nudged_or_not(value: Any) -> st.SearchStrategy[Any]:
    return st.just(value) | _nudged(value)


def _values(schema: Mapping[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values for a place ``schema`` describes: mostly ones it might accept (its enum, its
    pattern, its format, near its bounds, objects with what they require), near misses,
    and values of every other type."""
    options: list[st.SearchStrategy[Any]] = [_LEAVES]
    if "const" in schema:
        options += [st.just(schema["const"]), st.just(_near_miss(schema["const"]))]
    if "enum" in schema:
        enum = st.sampled_from(schema["enum"])
        options += [enum, enum.map(_near_miss)]
    kind = schema.get("type")
    if kind == "string" or "pattern" in schema or "format" in schema:
        options.append(_strings(schema))
    if kind in ("integer", "number"):
        options.append(_numbers(schema))
    if kind == "object" and depth < 3:
        properties = schema.get("properties", {})
        required = [k for k in schema.get("required", []) if k in properties]
        options.append(
            st.fixed_dictionaries(
                {k: _values(properties[k], depth + 1) for k in required},
                optional={
                    k: _values(v, depth + 1) for k, v in properties.items() if k not in required
                },
            )
        )
    if kind == "array" and depth < 3:
        options.append(st.lists(_values(schema.get("items", {}), depth + 1), max_size=3))
    return st.one_of(options)


Path_ = tuple[str | int, ...]
Site = tuple[Path_, Mapping[str, Any], Any]
# The rules a change aims at. A place may be changed by any; "value" sets it to any value.
_RULES = (
    "type",
    "enum",
    "const",
    "pattern",
    "format",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "required",
    "additionalProperties",
    "properties",
)


def _sites(schema: Mapping[str, Any], node: Any, at: Path_ = ()) -> list[Site]:
    """Every place in ``node`` and the part of ``schema`` that describes it."""
    found: list[Site] = [(at, schema, node)]
    if isinstance(node, dict):
        properties = schema.get("properties", {})
        for key, value in node.items():
            if key in properties:
                found += _sites(properties[key], value, (*at, key))
    elif isinstance(node, list) and isinstance(schema.get("items"), dict):
        for i, value in enumerate(node):
            found += _sites(schema["items"], value, (*at, i))
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _at(doc: Any, at: Path_) -> Any:
    for part in at:
        doc = doc[part]
    return doc


def _put(doc: Any, at: Path_, value: Any) -> Any:
    if not at:
        return value
    _at(doc, at[:-1])[at[-1]] = value
    return doc


@st.composite
def _broken(draw: st.DrawFn, schema: Mapping[str, Any], doc: Any) -> Any:
    """``doc`` changed at one place, aimed at one rule there: a rule first (each rule the
    document's schema uses as likely as any other, however rare), then a place it applies
    to, then a value that breaks it and little else (or, now and then, mends it)."""
    sites = _sites(schema, doc)
    by_rule = {rule: [s for s in sites if rule in s[1]] for rule in _RULES}
    rule = draw(st.sampled_from(["value", *(r for r in _RULES if by_rule[r])]))
    at, part, node = draw(st.sampled_from(by_rule.get(rule) or sites))
    properties = part.get("properties", {})
    if rule == "required" and isinstance(node, dict) and node:
        del node[draw(st.sampled_from(sorted(node)))]
    elif rule == "additionalProperties" and isinstance(node, dict):
        name = draw(st.text(min_size=1, max_size=8) | st.sampled_from(sorted(properties) or ["x"]))
        node[name if name not in properties else name.upper() + "_"] = draw(_LEAVES)
    elif rule == "properties" and isinstance(node, dict) and properties:
        name = draw(st.sampled_from(sorted(properties)))
        node[name] = draw(_values(properties[name]))
    elif rule == "minItems" and isinstance(node, list):
        del node[max(part["minItems"] - 1, 0) :]
    elif rule in ("maxItems", "uniqueItems") and isinstance(node, list) and node:
        node.extend(copy.deepcopy(node[-1]) for _ in range(part.get("maxItems", 0) + 1))
        if rule == "uniqueItems":
            del node[len(node) - part.get("maxItems", 0) :]
    elif rule == "maxLength" and isinstance(node, str) and node:
        doc = _put(doc, at, node.ljust(part["maxLength"] + 1, node[-1]))
    elif rule == "minLength" and isinstance(node, str):
        doc = _put(doc, at, node[: part["minLength"] - 1])
    elif rule in ("minimum", "maximum", "multipleOf") and _is_number(node):
        step = part.get("multipleOf", 1)
        edge = {"minimum": part.get("minimum", 0) - step, "maximum": part.get("maximum", 0) + step}
        doc = _put(doc, at, edge.get(rule, node + step / 3))
    elif rule in ("enum", "const"):
        near = st.just(_near_miss(node))
        doc = _put(doc, at, draw(st.one_of(near, _nudged(node), _values(part))))
    elif rule in ("pattern", "format"):
        doc = _put(doc, at, draw(st.one_of(_nudged(node), _nudged(node), _values(part))))
    else:  # type, or any value at all
        doc = _put(doc, at, draw(_values(part)))
    return doc


@st.composite
def instances(draw: st.DrawFn, schema: Mapping[str, Any], sample: Any) -> Any:
    """The valid sample, or it changed at up to three places (most often one)."""
    doc = copy.deepcopy(sample)
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 1, 2, 3]))):
        doc = draw(_broken(schema, doc))
    return doc


def reference_accepts(schema: EventSchema, doc: Any) -> bool:
    return not any(True for _ in schema.validator.iter_errors(doc))


def product_accepts(schema: EventSchema, doc: Any) -> bool:
    try:
        schema.validate(doc)
    except SchemaViolation:
        return False
    return True


@functools.cache
def relaxed_fast(event_type: str, version: int) -> Any:
    """jsonschema-rs over the schema file with the reference's laxities (``_relaxed``)."""
    document = json.loads(
        (DEFAULT_DIR / event_type / f"v{version}.json").read_text(encoding="utf-8")
    )
    return jsonschema_rs.validator_for(_relaxed(document), validate_formats=True)


def test_every_schema_file_is_loaded_and_has_a_valid_sample(schemas: SchemaRegistry) -> None:
    """The comparison below runs on every schema under schemas/, each from a valid sample,
    so a schema added is compared as soon as it has one."""
    assert len(ON_DISK) == len(schemas.event_types) == len(event_samples.event_types()) >= 17
    assert sorted(t for t, _ in ON_DISK) == schemas.event_types == event_samples.event_types()
    for event_type, version in ON_DISK:
        schema, sample = schemas.get(event_type, version), event_samples.valid_data(event_type)
        assert schema.fast.is_valid(sample) and reference_accepts(schema, sample), event_type
        for at, part, node in _sites(schema.document, sample):
            for name in part.get("required", []) if isinstance(node, dict) else []:
                broken = copy.deepcopy(sample)
                del _at(broken, at)[name]
                assert not schema.fast.is_valid(broken), (event_type, at, name)
                assert not reference_accepts(schema, broken), (event_type, at, name)


@pytest.mark.parametrize(("event_type", "version"), ON_DISK, ids=[t for t, _ in ON_DISK])
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_the_fast_validator_agrees_with_the_reference_one(
    schemas: SchemaRegistry, event_type: str, version: int, data: st.DataObject
) -> None:
    """Valid events and events broken anywhere (a field dropped, a stranger added, a value
    of the wrong type or format, out of its pattern, bounds or enum, a declared field that
    was absent set) get the same verdict from validate() as from the reference validator;
    jsonschema-rs never accepts what the reference refuses, and refuses what it accepts only
    where the reference is laxer (``_relaxed``)."""
    schema = schemas.get(event_type, version)
    doc = data.draw(instances(schema.document, event_samples.valid_data(event_type)))
    reference = reference_accepts(schema, doc)
    event(f"reference {'accepts' if reference else 'refuses'}")
    accepted = product_accepts(schema, doc)
    assert accepted == reference, (
        f"validate() {'accepts' if accepted else 'refuses'}, the reference not"
    )
    if schema.fast.is_valid(doc):
        assert reference, "jsonschema-rs accepts what the reference refuses"
    elif reference:
        assert relaxed_fast(event_type, version).is_valid(doc), "refused for no known reason"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("date_of_birth", "0000-01-01"),
        ("date_of_birth", "-016-04-09"),
        ("date_of_birth", "2/16-04-09"),
        ("arrival_time", "2026-12-31T23:59:60Z"),
        ("arrival_time", "2026-11-20T21:1.:00Z"),
        ("arrival_time", "2026-11-20T21:14:00+0-:00"),
    ],
)
def test_a_date_python_refuses_is_refused(schemas: SchemaRegistry, field: str, value: str) -> None:
    """jsonschema-rs 0.60 alone takes these (a sign or "/" for a digit, the year 0000, a
    leap second); the registry has it ask the reference for dates, so it refuses them."""
    schema = schemas.get(ATTENDANCE)
    doc = event_samples.valid_data(ATTENDANCE)
    doc["subject" if field == "date_of_birth" else "attendance"][field] = value
    assert not reference_accepts(schema, doc)
    assert not schema.fast.is_valid(doc)
    assert not product_accepts(schema, doc)
