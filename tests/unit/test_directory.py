"""The agency directory file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.backbone.directory import AgencyKind, Directory, load_directory, parse_directory
from services.backbone.errors import ConfigurationError
from tests.unit.factories import ED, LA, PH


def test_the_shipped_directory(directory: Directory) -> None:
    assert [(a.id, a.kind) for a in directory] == [
        (LA, AgencyKind.SOCIALCARE),
        (ED, AgencyKind.HEALTH),
        ("school-oakfield", AgencyKind.EDUCATION),
        (PH, AgencyKind.ANALYTICS),
    ]
    assert [a.id for a in directory.publishers] == [LA, ED, "school-oakfield"]
    assert LA in directory
    assert "la-elsewhere" not in directory
    assert directory.get(ED).name.startswith("Riverside University Hospitals")
    # CP-IS: the authority is told when the ED has received its plan; nobody else asked.
    assert [a.id for a in directory if a.access_back] == [LA]


def test_an_unknown_agency_is_refused(directory: Directory) -> None:
    with pytest.raises(ConfigurationError, match="unknown agency 'la-elsewhere'"):
        directory.get("la-elsewhere")


def test_a_missing_name_falls_back_to_the_id() -> None:
    directory = parse_directory({"agencies": [{"id": "school-7", "kind": "education"}]})
    assert directory.get("school-7").name == "school-7"


def test_access_back_is_off_unless_asked_for() -> None:
    directory = parse_directory(
        {
            "agencies": [
                {"id": "school-7", "kind": "education"},
                {"id": "la-x", "kind": "socialcare", "access_back": True},
                {"id": "ed-y", "kind": "health", "access_back": False},
            ]
        }
    )
    assert [(a.id, a.access_back) for a in directory] == [
        ("school-7", False),
        ("la-x", True),
        ("ed-y", False),
    ]


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        (None, "non-empty 'agencies' list"),
        ({"agencies": []}, "non-empty 'agencies' list"),
        ({"agencies": ["la-x"]}, r"agencies\[0\] is not a mapping"),
        ({"agencies": [{"id": "LA_X", "kind": "socialcare"}]}, "id 'LA_X' must match"),
        ({"agencies": [{"id": "la-x", "kind": "police"}]}, "kind must be one of"),
        (
            {"agencies": [{"id": "la-x", "kind": "socialcare"}] * 2},
            r"agencies\[1\]: duplicate id 'la-x'",
        ),
        (
            {"agencies": [{"id": "la-x", "kind": "socialcare", "access_back": "true"}]},
            r"agencies\[0\]: access_back of 'la-x' must be true or false",
        ),
        (
            {"agencies": [{"id": "la-x", "kind": "socialcare", "access_back": None}]},
            r"agencies\[0\]: access_back of 'la-x' must be true or false",
        ),
        (
            {"agencies": [{"id": "ph-x", "kind": "analytics", "access_back": True}]},
            r"agencies\[0\]: access_back of 'ph-x' needs an agency that publishes",
        ),
    ],
)
def test_a_bad_directory_is_refused(doc: Any, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        parse_directory(doc)


def test_load_refuses_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_directory(tmp_path / "absent.yaml")
    bad = tmp_path / "agencies.yaml"
    bad.write_text("agencies: [", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        load_directory(bad)
