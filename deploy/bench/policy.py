"""Benchmark of the pure decision core (no I/O): one event decided for five recipients with
mixed rules, and the same decision against 10 and 1,000 protocols. Run by
``infoshare bench policy``; a script that measures and reports, never a test."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from consent.core.conditions import Condition
from consent.core.decide import EventFacts, decide
from consent.core.model import (
    FieldRule,
    Generalisation,
    IdentityLevel,
    LawfulBasis,
    Protocol,
    ProtocolSet,
    Purpose,
    RecipientRule,
    RuleKind,
)
from consent.core.sealed import DataKeys, seal
from consent.core.state import ProtectionPlan, SubjectState
from deploy.bench import yardstick
from deploy.devstack.demo import scenario
from services.backbone.identifiers import subject_identifier
from services.backbone.keyed import Key
from services.health.fhir_mapping import ATTENDANCE, attendance_from_bundle

RECIPIENTS = [f"bench-recipient-{i}" for i in range(5)]
A = RuleKind.ALLOW


def _rules(i: int) -> tuple[FieldRule, ...]:
    common = (
        FieldRule(A, "attendance.arrival_time", "attendance.arrival_time"),
        FieldRule(A, "attendance.site.ods_code", "attendance.site.ods_code"),
        FieldRule(RuleKind.MASK, "attendance.clinical_notes", "attendance.notes"),
    )
    per = [
        (FieldRule(A, "subject.nhs_number", "subject.nhs_number"),),
        (
            FieldRule(RuleKind.PSEUDONYMISE, "subject.nhs_number", "subject.pseudonym"),
            FieldRule(
                RuleKind.GENERALISE,
                "subject.date_of_birth",
                "subject.age_band",
                Generalisation.AGE_BAND,
            ),
        ),
        (
            FieldRule(RuleKind.TOKENISE, "subject.nhs_number", "subject.token"),
            FieldRule(
                RuleKind.GENERALISE,
                "subject.postcode",
                "subject.district",
                Generalisation.POSTCODE_DISTRICT,
            ),
        ),
        (
            FieldRule(
                RuleKind.GENERALISE, "subject.date_of_birth", "subject.year", Generalisation.YEAR
            ),
        ),
        (
            FieldRule(A, "attendance.presenting_complaint_category", "attendance.category"),
            FieldRule(RuleKind.ENCRYPT, "attendance.clinical_notes", "attendance.notes_sealed"),
        ),
    ]
    return common + per[i]


def _protocol(pid: str, source: str, event_type: str) -> Protocol:
    condition = Condition.compile(
        "has(state.protection_plan) && state.protection_plan.authority == recipient"
        " || event.data.attendance.presenting_complaint_category == 'injury'"
    )
    return Protocol(
        id=pid,
        version=1,
        title=pid,
        owner="bench",
        purpose=Purpose.DIRECT_SAFEGUARDING,
        lawful_basis=LawfulBasis("e", "g", "part 2 para 18"),
        source_agencies=frozenset({source}),
        event_types=frozenset({event_type}),
        recipients=tuple(
            RecipientRule(agency, IdentityLevel.IDENTIFIED, _rules(i), condition)
            for i, agency in enumerate(RECIPIENTS)
        ),
    )


def protocol_set(size: int) -> ProtocolSet:
    """One protocol covering the benchmark event, the rest covering other agencies' events."""
    real = _protocol("bench-real", "nhs-riverside-ed", ATTENDANCE)
    others = [
        _protocol(f"bench-other-{i}", f"agency-{i % 97}", f"type.{i}") for i in range(size - 1)
    ]
    return ProtocolSet((real, *others))


@dataclass(frozen=True)
class Timing:
    median_us: float
    p99_us: float


def _time_side_by_side(
    cases: dict[str, Callable[[], object]], iterations: int, rounds: int = 10
) -> dict[str, Timing]:
    """Time every case in interleaved rounds, so drift on a busy machine (and the garbage
    collector) weighs on each case alike."""
    for fn in cases.values():
        for _ in range(200):
            fn()  # warm up
    samples: dict[str, list[float]] = {name: [] for name in cases}
    per_round = max(1, iterations // rounds)
    for _ in range(rounds):
        for name, fn in cases.items():
            gc.collect()
            for _ in range(per_round):
                start = time.perf_counter_ns()
                fn()
                samples[name].append((time.perf_counter_ns() - start) / 1000)
    out = {}
    for name, values in samples.items():
        values.sort()
        out[name] = Timing(statistics.median(values), values[int(len(values) * 0.99) - 1])
    return out


YARDSTICK = "yardstick (plain Python)"
OURS_PLAIN = "infoshare doing the yardstick's work"
OURS_DECIDE = "infoshare's decide() alone, the yardstick's rules"
MIXED = "10 protocols"
SEAL_DATA_KEY = "one 500-byte field sealed under the window's data key"
SEAL_HPKE = "the same field sealed with HPKE alone (as before)"


def run(iterations: int = 5000, yardstick_path: Path | None = None) -> dict[str, Timing]:
    keys = {agency: Key(f"k-{agency}", os.urandom(32)) for agency in RECIPIENTS}
    token_key = Key("bench-token", os.urandom(64))
    public = DataKeys({agency: X25519PrivateKey.generate().public_key() for agency in RECIPIENTS})
    data = attendance_from_bundle(scenario.attendance_bundle(scenario.ON_PLAN))
    event = EventFacts(
        "e1",
        ATTENDANCE,
        "nhs-riverside-ed",
        data,
        subject_identifier(nhs_number=scenario.ON_PLAN.nhs_number),
        occurred=date(2026, 11, 20),
    )
    state = SubjectState(ProtectionPlan(RECIPIENTS[0], "CPP-1", "neglect", "2026-11-02"))
    small, large = protocol_set(10), protocol_set(1000)
    for protocols in (small, large):
        decisions = decide(
            event, protocols, state, keys, token_key=token_key, recipient_keys=public
        )
        assert len(decisions) == 5 and all(d.payload for d in decisions)
    quiet = replace(
        event,
        data={
            **data,
            "attendance": {**data["attendance"], "presenting_complaint_category": "illness"},
        },
    )
    cases: dict[str, Callable[[], object]] = {}
    notes = "n" * 500
    one_key = next(iter(RECIPIENTS))
    cases[SEAL_DATA_KEY] = lambda: public.seal(recipient=one_key, path="notes", value=notes)
    public_key = X25519PrivateKey.generate().public_key()
    cases[SEAL_HPKE] = lambda: seal(public_key, recipient=one_key, path="notes", value=notes)
    stick = yardstick.load(yardstick_path or yardstick.default_path())
    if stick is not None:
        cases[YARDSTICK] = lambda: stick.decide(stick.EVENT)
        cases[OURS_PLAIN], cases[OURS_DECIDE] = yardstick.ours(stick.EVENT)
    return _time_side_by_side(
        {
            **cases,
            MIXED: lambda: decide(
                event, small, state, keys, token_key=token_key, recipient_keys=public
            ),
            "1000 protocols": lambda: decide(
                event, large, state, keys, token_key=token_key, recipient_keys=public
            ),
            "10 protocols, condition false for 4 of 5": lambda: decide(
                quiet, small, state, keys, token_key=token_key, recipient_keys=public
            ),
        },
        iterations,
    )


def _against_yardstick(results: dict[str, Timing]) -> list[str]:
    stick = results.get(YARDSTICK)
    if stick is None:
        return [
            "The yardstick (`../shared/yardsticks/decide.py`) was not found, so this run has no"
            " ratio against it (`--yardstick PATH`).",
            "",
        ]
    plain = results[OURS_PLAIN].median_us / stick.median_us
    alone = results[OURS_DECIDE].median_us / stick.median_us
    mixed = results[MIXED].median_us / stick.median_us
    return [
        f"Against the yardstick, in the same run (goal for one decision of 5 recipients: at"
        f" most 0.6; for the mixed rules: at most 0.8): `decide()` alone with the yardstick's"
        f" rules **{alone:.2f}x**; infoshare doing all of the yardstick's work (decode the event"
        f" from its Kafka record, decide, write each delivery and its full audit record)"
        f" **{plain:.2f}x**; the mixed-rule decision (`decide()`, one sealed field)"
        f" **{mixed:.2f}x**.",
        "",
        f"An encrypted field costs {results[SEAL_DATA_KEY].median_us:.1f} us under a data key"
        f" (goal: at most 5 us, amortised), against {results[SEAL_HPKE].median_us:.0f} us for"
        " an HPKE seal of its own.",
        "",
    ]


def report(results: dict[str, Timing], iterations: int) -> str:
    ten, thousand = results[MIXED], results["1000 protocols"]
    ratio = thousand.median_us / ten.median_us
    lines = [
        "## Policy decision (pure core, no I/O)",
        "",
        f"`infoshare bench policy --iterations {iterations}` on {platform.python_implementation()}"
        f" {platform.python_version()}, {os.cpu_count()} cores. One attendance decided for 5"
        " recipients (CEL condition; allow, mask, generalise to age band / year / district,"
        " pseudonymise, tokenise, encrypt).",
        "",
        "| case | median per event | p99 per event |",
        "| --- | --- | --- |",
        *(f"| {name} | {t.median_us:.0f} us | {t.p99_us:.0f} us |" for name, t in results.items()),
        "",
        f"1,000 protocols against 10: **{ratio:.2f}x** the median (goal: at most 1.1x; protocols "
        "are indexed by source agency and event type).",
        "",
        *_against_yardstick(results),
    ]
    return "\n".join(lines)
