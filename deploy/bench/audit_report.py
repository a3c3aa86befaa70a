"""Benchmark: a child's disclosure report with millions of records in the audit table, on
each backend. The table is filled with sealed records (a valid trail, numbered and chained
as the store does it, in large batches), then `POST /audit/disclosure-report` is called on
the real audit app (in process, no network) for children picked at random; each call also
writes its own access record, as in production. Reports p50/p95 latency."""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlmodel import Session

from deploy.bench.audit_record import bench_audit_id, bench_event_id, bench_record
from deploy.devstack.identity.provider import IG_OFFICER
from deploy.devstack.identity.serve import identity_provider
from services.audit.models import AuditEntry
from services.audit.sealing import seal_new
from services.backbone.bulk import insert_rows
from services.backbone.directory import load_directory
from services.backbone.identifiers import subject_identifier
from services.backbone.keyed import keyed_id
from services.backbone.keyring import generate_keyring, load_keyring

RECORDS_PER_CHILD = 20
LOAD_CHUNK = 20_000
SAMPLES = 200
WARM_UP = 10


@dataclass(frozen=True)
class ReportResult:
    backend: str
    records: int
    load_s: float
    latencies_ms: Sequence[float]
    rows_per_report: float
    server: str  # the database's version

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.latencies_ms, n=20)[-1]


def nhs_number(n: int) -> str:
    """The n-th valid NHS number from 900 000 000 0 up (stems whose check would be 10 are
    skipped): test numbers, nobody's."""
    stem = 900_000_000 + n
    while True:
        digits = f"{stem:09d}"
        check = 11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check != 10:
            return digits + str(0 if check == 11 else check)
        stem += 1_000_000  # another stem, far from the others


def measure_reports(
    backend: str, url: str, records: int, *, say: Callable[[str], None]
) -> ReportResult:
    from services.audit.app import AuditSettings, create_app

    with (
        tempfile.TemporaryDirectory(prefix="infoshare-bench-report-") as tmp,
        identity_provider(Path(tmp) / "identity") as people,
    ):
        keyring_file = generate_keyring(
            Path(tmp) / "keyring.yaml", [a.id for a in load_directory(None)]
        )
        keyring = load_keyring(keyring_file)
        settings = AuditSettings(
            keyring_file=keyring_file,
            audit_database_url=url,
            audit_checkpoint_file=Path(tmp) / "cp.jsonl",
            oidc_issuer=people.issuer,  # the officer asking is verified as in production
        )
        app = create_app(settings)  # migrates the schema
        children = max(1, records // RECORDS_PER_CHILD)
        numbers = [nhs_number(c) for c in range(children)]
        audit_key = keyring.require_audit_subject().secret
        keys = [
            keyed_id(audit_key, "audit-subject", subject_identifier(nhs_number=n)) for n in numbers
        ]
        chain_key = keyring.require_audit_chain().secret
        engine = app.state.audit_store.engine
        now = datetime.now(UTC)
        started = time.perf_counter()
        template = bench_record(0, now, "").model_dump()
        for start in range(0, records, LOAD_CHUNK):
            rows = [
                _row(template, i, keys[(i * 7919) % children])
                for i in range(start, min(start + LOAD_CHUNK, records))
            ]
            with Session(engine) as session:
                seal_new(session, rows, chain_key)
                insert_rows(session.connection(), AuditEntry.__table__, rows)  # type: ignore[attr-defined]
                session.commit()
            if (start // LOAD_CHUNK) % 25 == 0:
                say(f"{backend}: {start + len(rows):,} of {records:,} records loaded")
        app.state.audit_store.checkpoint()  # signed, as the ingester does every 1,000
        if backend == "postgresql":  # what autovacuum does within a minute of a bulk load
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                    text("VACUUM ANALYZE audit_entry")
                )
        load_s = time.perf_counter() - started
        with engine.connect() as conn:
            server = str(
                conn.execute(
                    text(
                        "SELECT sqlite_version()" if backend == "sqlite" else "SHOW server_version"
                    )
                ).scalar()
            )
        officer = people.token(IG_OFFICER, ttl_s=12 * 3600)
        say(f"{backend}: timing {SAMPLES} disclosure reports")
        latencies, rows_seen = asyncio.run(_time_reports(app, officer, numbers))
        engine.dispose()
    return ReportResult(
        backend, records, load_s, latencies, statistics.mean(rows_seen), server.split()[0]
    )


def _row(template: dict[str, Any], i: int, subject_key: str) -> dict[str, Any]:
    """``bench_record(i, ...)``'s columns, made by copying (building each took most of the
    load time): the values that differ per record, and fresh lists for the JSON columns."""
    row = {k: list(v) if isinstance(v, list) else v for k, v in template.items()}
    row.update(
        audit_id=bench_audit_id(i),
        decision="shared" if i % 3 else "withheld",
        event_id=bench_event_id(i),
        subject_key=subject_key,
        partition_in=i % 6,
        offset_in=i,
        trace_id=f"{i:032x}",
    )
    return row


async def _time_reports(
    app: object, officer: str, numbers: Sequence[str]
) -> tuple[list[float], list[int]]:
    picker = random.Random(20261126)  # noqa: S311 (a sample of children, not a secret)
    chosen = [picker.choice(numbers) for _ in range(WARM_UP + SAMPLES)]
    latencies: list[float] = []
    counts: list[int] = []
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    headers = {"Authorization": f"Bearer {officer}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://audit") as client:
        for n, number in enumerate(chosen):
            started = time.perf_counter()
            response = await client.post(
                "/audit/disclosure-report", json={"nhs_number": number}, headers=headers
            )
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if n >= WARM_UP:
                latencies.append(elapsed)
                counts.append(int(response.json()["count"]))
    return latencies, counts


def report_section(results: Sequence[ReportResult]) -> str:
    if not results:
        return ""
    records = results[0].records
    lines = [
        f"### A child's disclosure report with {records:,} records in the table",
        "",
        f"The table holds {records:,} sealed records about "
        f"{records // RECORDS_PER_CHILD:,} children ({RECORDS_PER_CHILD} each, spread through "
        "the table), sealed by the store's own sealing and written as the store writes them, "
        "in batches of "
        f"{LOAD_CHUNK:,}. Then `POST /audit/disclosure-report` (JSON) on the real audit app, "
        f"in process, for {SAMPLES} children picked at random (after {WARM_UP} not counted): "
        "the NHS number keyed, aliases followed, the child's records read by the subject-key "
        "index, the report built, and the look-up itself sealed into the trail. The load time "
        "includes the signed checkpoint over the whole table; PostgreSQL then gets `VACUUM "
        "ANALYZE`, as autovacuum would.",
        "",
        "| backend | version | records | load s | load records/s | decisions per report | "
        "p50 ms | p95 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.server} | {r.records:,} | {r.load_s:.0f} | "
            f"{r.records / r.load_s:,.0f} | "
            f"{r.rows_per_report:.0f} | {r.p50:.1f} | {r.p95:.1f} |"
        )
    if len(results) == 2:
        a, b = results
        lines += [
            "",
            f"{b.backend} p50 is {b.p50 / a.p50:.2f}x {a.backend}'s; p95 {b.p95 / a.p95:.2f}x.",
        ]
    return "\n".join(lines) + "\n"
