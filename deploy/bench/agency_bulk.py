"""Bulk native inputs for the agency benchmark, made as their senders make them: a school
MIS attendance export with one row per pupil (each under the attendance threshold, so each
row is an event), and a FHIR batch Bundle of emergency-department Encounters, each with its
patient contained. Every pupil and patient is a different test-range child (valid NHS
numbers, UPNs with their check letter)."""

from __future__ import annotations

import copy
import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from deploy.bench.loadgen import nhs_numbers

SAMPLES = Path(__file__).resolve().parents[2] / "tests" / "data"
_UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"  # DfE's alphabet for the check letter


def upns(count: int, start: int) -> Iterator[str]:
    """Valid permanent UPNs: LA 999, establishment 4001, then nine digits counted from
    ``start`` (the year of admission and serial)."""
    for n in range(start, start + count):
        body = f"9994001{n % 100_000:05d}"
        total = sum(int(c) * w for c, w in zip(body, range(2, 14), strict=True))
        yield _UPN_LETTERS[total % 23] + body


def attendance_export(rows: int, start: int) -> bytes:
    """The sample export's header and its first pupil's figures (under 90%), for ``rows``
    different pupils."""
    sample = (SAMPLES / "education" / "attendance.csv").read_text(encoding="utf-8-sig")
    header, first = list(csv.reader(io.StringIO(sample)))[:2]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for upn, nhs in zip(upns(rows, start), nhs_numbers(rows, 999_300_000 + start), strict=True):
        writer.writerow([upn, *first[1:4], nhs, *first[5:]])
    return b"\xef\xbb\xbf" + out.getvalue().encode()


def encounter_bundle(entries: int, start: int) -> bytes:
    """A batch Bundle of ``entries`` Encounters like the sample, each its own child."""
    sample: dict[str, Any] = orjson.loads(
        (SAMPLES / "health" / "encounter-emergency.json").read_bytes()
    )
    entry = []
    for i, nhs in enumerate(nhs_numbers(entries, 999_500_000 + start)):
        encounter = copy.deepcopy(sample)
        encounter["id"] = f"ED-BULK-{start + i}"
        encounter["contained"][0]["identifier"][0]["value"] = nhs
        entry.append(
            {
                "resource": encounter,
                "request": {"method": "PUT", "url": f"Encounter/{encounter['id']}"},
            }
        )
    return orjson.dumps({"resourceType": "Bundle", "type": "batch", "entry": entry})
