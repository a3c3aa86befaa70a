"""Benchmark of the audit store on SQLite: sealed ingest rate (records numbered, chained and
checkpointed as the audit service stores them) and `audit verify` time against the number of
records. Run by ``infoshare bench audit``; a script that measures and reports, never a test."""

from __future__ import annotations

import os
import platform
import secrets
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.chain import verify
from services.audit.sealing import Sealing, stored_checkpoints, stored_records
from services.audit.store import AuditStore
from services.backbone.audit_contract import AuditOutcome, AuditRecord

BATCH = 1000


@dataclass(frozen=True)
class Result:
    records: int
    ingest_s: float
    verify_s: float

    @property
    def ingest_per_s(self) -> float:
        return self.records / self.ingest_s

    @property
    def verify_per_s(self) -> float:
        return self.records / self.verify_s


def _record(i: int, now: datetime) -> AuditRecord:
    return AuditRecord(
        audit_id=f"bench-{i:012d}",
        recorded_at=now,
        occurred_at=now,
        action="disclose",
        decision=AuditOutcome.SHARED if i % 3 else AuditOutcome.WITHHELD,
        reason_code="shared.protocol_allows",
        reason="public-health-attendance-analytics@2 (planning) allows pseudonymised sharing",
        actor="infoshare-processor",
        event_id=f"event-{i}",
        event_type="health.unscheduled_care.attendance",
        source_agency="nhs-riverside-ed",
        recipient="ph-northshire",
        purpose="planning",
        protocol_id="public-health-attendance-analytics",
        protocol_version=2,
        lawful_basis="UK GDPR Art 6(1)(e); Art 9(2)(i); DPA 2018 Sch 1 part 1 para 3",
        identity_level="pseudonymised",
        subject_key=f"{i % 1000:032x}",
        fields_disclosed=["attendance.arrival_time", "attendance.site.ods_code"],
        fields_pseudonymised=["subject.pseudonym"],
        fields_withheld=["subject.nhs_number", "attendance.clinical_notes"],
        topic_in="source.nhs-riverside-ed",
        partition_in=i % 6,
        offset_in=i,
        trace_id=f"{i:032x}",
    )


def measure(records: int, root: Path) -> Result:
    sealing = Sealing(
        secrets.token_bytes(32),
        "bench",
        Ed25519PrivateKey.generate(),
        root / f"checkpoints-{records}.jsonl",
        checkpoint_every=10_000,
    )
    store = AuditStore(f"sqlite:///{root / f'audit-{records}.db'}", sealing)
    store.create_schema()
    now = datetime.now(UTC)
    started = time.perf_counter()
    for start in range(0, records, BATCH):
        store.add_batch([_record(i, now) for i in range(start, min(start + BATCH, records))])
    store.checkpoint()
    ingest_s = time.perf_counter() - started
    started = time.perf_counter()
    verdict = verify(
        sealing.chain_key,
        stored_records(store.engine),
        stored_checkpoints(store.engine),
        sealing.signing.public_key(),
    )
    verify_s = time.perf_counter() - started
    if not verdict.ok or verdict.records != records:
        raise RuntimeError(f"the benchmark's own trail did not verify: {verdict}")
    return Result(records, ingest_s, verify_s)


def run(
    sizes: Sequence[int] = (10_000, 100_000), say: Callable[[str], None] = print
) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="infoshare-bench-audit-") as tmp:
        results = []
        for size in sizes:
            say(f"{size} records: ingesting in batches of {BATCH}, then verifying")
            results.append(measure(size, Path(tmp)))
        return results


def report(results: Sequence[Result]) -> str:
    lines = [
        "## Audit store (SQLite): sealed ingest and verify",
        "",
        f"`infoshare bench audit` on {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, SQLite in a temporary file. Ingest "
        f"is `AuditStore.add_batch` in batches of {BATCH}: each record checked against the "
        "stored ids, numbered, hashed, chained (HMAC) and committed, with a signed checkpoint "
        "every 10,000. Verify is `infoshare audit verify`'s work: every record re-hashed and "
        "re-chained, every checkpoint's Merkle tree head recomputed.",
        "",
        "| records | ingest s | ingest records/s | verify s | verify records/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r.records} | {r.ingest_s:.1f} | {r.ingest_per_s:.0f} | {r.verify_s:.1f} | "
            f"{r.verify_per_s:.0f} |"
        )
    if len(results) > 1:
        a, b = results[0], results[-1]
        lines += [
            "",
            f"Verify time grows {b.verify_s / a.verify_s:.1f}x for {b.records / a.records:.0f}x "
            "the records (linear is the goal: one pass, plus one tree per checkpoint).",
        ]
    return "\n".join(lines) + "\n"
