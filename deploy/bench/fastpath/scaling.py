"""The configurations of the fast-path benchmark's scaling series: how the processor's
throughput moves with the recipients an attendance goes to (1, 3, 10), its payload (1, 4,
16 KB) and the protocols loaded (10, 1,000), one at a time from a common base.

Each configuration is an agency directory and a protocol directory of its own, written as a
user would write them and loaded through the same checks. Recipient ``i`` gets the
attendance under a protocol of its own, its rules one of three kinds in turn: identified,
pseudonymised (as public health), or identified only for a child on a protection plan
(about half of them). The rest of the protocols cover another source's attendances, so they
load and compile but never match.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from deploy.bench.loadgen import ED_SOURCE
from services.backbone.directory import DEFAULT_FILE
from services.health.fhir_mapping import ATTENDANCE

RECIPIENTS_MAX = 10
OTHER_SOURCES = 10  # the never-matching protocols' sources (each a source topic)


@dataclass(frozen=True)
class Config:
    recipients: int = 3
    payload: int = 1024
    protocols: int = 10

    @property
    def label(self) -> str:
        return (
            f"{self.recipients} recipients, {self.payload // 1024} KB, {self.protocols} protocols"
        )


BASE = Config()
SERIES: dict[str, list[Config]] = {
    "recipients": [Config(recipients=n) for n in (1, 3, 10)],
    "payload": [Config(payload=n * 1024) for n in (1, 4, 16)],
    "protocols": [Config(protocols=n) for n in (10, 1000)],
}


def configs() -> list[Config]:
    """Every configuration the series need, each once."""
    return list(dict.fromkeys(c for series in SERIES.values() for c in series))


def recipient(i: int) -> str:
    return f"bench-recipient-{i}"


def source(j: int) -> str:
    return f"bench-source-{j}"


def agencies_file(root: Path) -> Path:
    """The shipped directory with the benchmark's recipients and sources added."""
    doc = yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))
    doc["agencies"] += [
        {"id": recipient(i), "name": f"Benchmark recipient {i}", "kind": "analytics"}
        for i in range(RECIPIENTS_MAX)
    ] + [
        {"id": source(j), "name": f"Benchmark source {j}", "kind": "health"}
        for j in range(OTHER_SOURCES)
    ]
    path = root / "agencies.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def protocols_dir(root: Path, config: Config) -> Path:
    """``config.recipients`` protocols covering the attendances, the rest covering another
    source's, ``config.protocols`` in all."""
    if config.protocols < config.recipients:
        raise ValueError("fewer protocols than recipients")
    where = root / f"protocols-{config.recipients}-{config.protocols}"
    where.mkdir(parents=True, exist_ok=True)
    for n in range(config.protocols):
        # A recipient's rules are of one kind everywhere (one identity level per recipient,
        # source and event type, as the checks require).
        to = n % RECIPIENTS_MAX
        from_ = ED_SOURCE if n < config.recipients else source(n // RECIPIENTS_MAX % OTHER_SOURCES)
        doc = _protocol(f"bench-{n}", recipient(to), to % 3, from_)
        (where / f"bench-{n}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return where


def _protocol(pid: str, to: str, kind: int, from_: str) -> dict[str, Any]:
    identified = kind != 1
    recipient_rule: dict[str, Any] = {
        "agency": to,
        "identity": "identified" if identified else "pseudonymised",
        "retention": "P2Y",
        "fields": _FIELDS[kind],
    }
    if kind == 2:
        recipient_rule["when"] = "has(state.protection_plan)"
        recipient_rule["when_description"] = "the child has an active child protection plan"
    return {
        "id": pid,
        "version": 1,
        "title": f"Benchmark protocol {pid}",
        "owner": "infoshare benchmark <bench@example.invalid>",
        "valid_from": date(2026, 1, 1),
        "valid_until": date(2029, 3, 31),
        "review_date": date(2027, 9, 30),
        "purpose": "direct_safeguarding" if identified else "planning",
        "lawful_basis": (
            {"article6": "e", "article9": "g", "dpa2018_schedule1": "part 2 para 18"}
            if identified
            else {"article6": "e", "article9": "i", "dpa2018_schedule1": "part 1 para 3"}
        ),
        "consent": "not_required",
        "sources": {
            "agencies": [from_],
            "event_types": [ATTENDANCE],
        },
        "recipients": [recipient_rule],
    }


_FIELDS: list[list[dict[str, str]]] = [
    [
        {"allow": "subject.nhs_number"},
        {"allow": "attendance.arrival_time"},
        {"allow": "attendance.site.ods_code"},
        {"allow": "attendance.presenting_complaint_category"},
    ],
    [
        {"pseudonymise": "subject.nhs_number", "as": "subject.pseudonym"},
        {"generalise": "subject.date_of_birth", "to": "year", "as": "subject.year_of_birth"},
        {
            "generalise": "subject.postcode",
            "to": "postcode_district",
            "as": "subject.postcode_district",
        },
        {"allow": "attendance.arrival_time"},
        {"tokenise": "attendance.encounter_id", "as": "attendance.encounter_token"},
    ],
    [
        {"allow": "subject.nhs_number"},
        {"allow": "attendance.arrival_time"},
        {"allow": "attendance.presenting_complaint_category"},
        {"allow": "attendance.clinical_notes"},
    ],
]
