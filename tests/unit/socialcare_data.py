"""The social care sample inputs (tests/data/socialcare/, one per endpoint) and what the
mappings need besides them, for the test_socialcare_* modules."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from services.backbone.directory import load_directory

DATA = Path(__file__).resolve().parents[1] / "data" / "socialcare"
AUTHORITY = "Northshire County Council, children's social care"
AGENCIES = frozenset(a.id for a in load_directory(None))

# Sample file -> the endpoint it is posted to.
ENDPOINTS = {
    "child-protection-plans": "/child-protection-plans",
    "child-protection-plans-ended": "/child-protection-plans/ended",
    "referrals": "/referrals",
    "assessments": "/assessments",
    "case-closures": "/case-closures",
    "looked-after-episodes": "/looked-after-episodes",
    "looked-after-episodes-ended": "/looked-after-episodes/ended",
}


def sample(name: str) -> dict[str, Any]:
    """A fresh copy of a sample body, to change in a test."""
    doc: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text("utf-8"))
    return copy.deepcopy(doc)
