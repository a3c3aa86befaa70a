"""Benchmark of the audit store on SQLite and PostgreSQL side by side: sealed ingest rate
(records numbered, chained and checkpointed as the audit service stores them), `audit
verify` time against the number of records, and (bench_audit_report.py) a child's
disclosure report with millions of records in the table. Run by ``infoshare bench audit``;
a script that measures and reports, never a test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from deploy.bench.audit_floor import database_alone
from deploy.bench.audit_record import bench_audit_id, bench_record, bench_subject_key
from deploy.bench.audit_report import (
    RECORDS_PER_CHILD,
    ReportResult,
    measure_reports,
    report_section,
)
from deploy.devstack.ports import free_listen_port
from deploy.devstack.postgres import PostgresNode
from services.audit.anchoring import file_anchor
from services.audit.ingest import BATCH_MAX
from services.audit.overlap import Overlap, workers_for
from services.audit.prepared import Ready
from services.audit.proof_doc import check_consistency, check_inclusion
from services.audit.proving import prove, prove_growth
from services.audit.sealing import Sealing, stored_checkpoints
from services.audit.store import AuditStore
from services.audit.verification import TrailVerdict, verify_trail
from services.backbone.collector import collect_less_often
from services.backbone.offload import Offload
from services.ops.components import freeze_startup_objects

BATCH = BATCH_MAX  # as the audit service's ingester takes them from Kafka
# Trails larger than a million are loaded in batches of 20,000 (PostgreSQL commits a batch of
# 1,000 at about 2,300 records/s here: 36 minutes for 5 million); the table says which.
LARGE, LOAD_BATCH = 1_000_000, 20_000
PROGRESS = 500_000  # say how far ingest has come every 500,000 records


def batch_for(records: int) -> int:
    return BATCH if records <= LARGE else LOAD_BATCH


BACKENDS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Result:
    backend: str
    records: int
    ingest_s: float
    verify_s: float  # `audit verify`'s walk with the chain key, a worker per CPU
    public_s: float = 0.0  # with public keys only (an outside verifier's)
    prove_s: float = 0.0  # one record's inclusion proof, from the store (infoshare audit prove)
    check_s: float = 0.0  # checking it offline (infoshare audit check-proof)
    growth_s: float = 0.0  # a consistency proof from half the trail (audit prove-growth)
    one_s: float = 0.0  # the same walk in one process (the audit service's own check)
    alone_s: float = 0.0  # the database alone storing the same rows (audit_floor.py)

    @property
    def alone_per_s(self) -> float:
        return self.records / self.alone_s if self.alone_s else 0.0

    @property
    def one_per_s(self) -> float:
        return self.records / self.one_s if self.one_s else 0.0

    @property
    def public_per_s(self) -> float:
        return self.records / self.public_s if self.public_s else 0.0

    @property
    def ingest_per_s(self) -> float:
        return self.records / self.ingest_s

    @property
    def verify_per_s(self) -> float:
        return self.records / self.verify_s


def sealing(root: Path, label: str, every: int = 1) -> Sealing:
    return Sealing(
        secrets.token_bytes(32),
        "bench",
        Ed25519PrivateKey.generate(),
        root / f"checkpoints-{label}.jsonl",
        # 1, as the service does: every batch signed in its own transaction.
        checkpoint_every=every,
    )


def measure(
    backend: str,
    url: str,
    records: int,
    root: Path,
    every: int = 1,
    say: Callable[[str], None] = print,
    alone_url: str | None = None,
) -> Result:
    """Ingest ``records`` into a new store at ``url`` and time what the section reports;
    with ``alone_url``, also the database alone storing the same rows there."""
    seal = sealing(root, f"{backend}-{records}-{every}", every)
    store = AuditStore(url, seal)
    store.create_schema()
    # As the audit service runs: what started frozen out of the collector's reach, and the
    # young generation collected as its ingester has it.
    freeze_startup_objects()
    collect_less_often()
    now = datetime.now(UTC)
    batch = batch_for(records)
    children = max(1, records // RECORDS_PER_CHILD)
    # As they arrive from audit.decisions: JSON, parsed and validated in the timed part.
    arriving = [
        [
            bench_record(i, now, bench_subject_key(i % children)).model_dump_json().encode()
            for i in range(start, min(start + batch, records))
        ]
        for start in range(0, records, batch)
    ]
    ingest_s = asyncio.run(_ingested(store, arriving, say))
    started = time.perf_counter()
    store.checkpoint()
    ingest_s += time.perf_counter() - started
    say("  verifying with the chain key (a worker per CPU, then one process), then public keys")
    cpus = len(os.sched_getaffinity(0))
    verify_s, verdict = _timed_verify(store, seal.chain_keys(), seal.public_keys(), cpus)
    one_s, one = _timed_verify(store, seal.chain_keys(), seal.public_keys(), 1)
    public_s, public = _timed_verify(store, (), seal.public_keys(), cpus)
    middle = bench_audit_id(records // 2)
    started = time.perf_counter()
    proof = prove(store.engine, middle, stored_checkpoints(store.engine))
    prove_s = time.perf_counter() - started
    started = time.perf_counter()
    problem = check_inclusion(proof, seal.public_keys())
    check_s = time.perf_counter() - started
    signed = stored_checkpoints(store.engine)
    half = min((c for c in signed if c.tree_size >= records // 2), key=lambda c: c.tree_size)
    started = time.perf_counter()
    growth = prove_growth(store.engine, signed, half.tree_size)
    growth_s = time.perf_counter() - started
    problem = problem or check_consistency(growth, seal.public_keys())
    alone_s = 0.0
    if alone_url is not None:
        say("  the database alone storing the same rows")
        alone_s = database_alone(store.engine, alone_url, batch)
    store.engine.dispose()
    for name, v in (("keyed", verdict), ("one process", one), ("public", public)):
        if not v.ok or v.records != records:
            raise RuntimeError(f"the benchmark's own trail did not verify ({name}): {v}")
    if problem is not None:
        raise RuntimeError(f"the benchmark's own proof did not check: {problem}")
    return Result(
        backend, records, ingest_s, verify_s, public_s, prove_s, check_s, growth_s, one_s, alone_s
    )


async def _ingested(
    store: AuditStore, batches: Sequence[Sequence[bytes]], say: Callable[[str], None]
) -> float:
    """Seconds to store ``batches`` as the audit service's ingester does: each prepared in
    a worker process while the one before is written (``Overlap``, with the service's
    default for the backend, ``workers_for``; a worker is started before the clock)."""
    preparing = Offload(workers_for(store.engine.dialect.name))
    overlap = Overlap(preparing, store.engine.url.drivername)
    await overlap.prepare([], [])  # the worker started and its imports made, not timed
    stored = 0
    try:
        started = time.perf_counter()
        for values in batches:
            made = await overlap.prepare(values, [False] * len(values))
            ready = [p for p in made if not isinstance(p, str)]
            if len(ready) != len(values):
                raise RuntimeError("the benchmark's own records were refused")
            await overlap.then(asyncio.to_thread(_add, store, ready))
            stored += len(values)
            if stored % PROGRESS == 0:
                say(f"  {stored:,} records prepared")
        await overlap.written()
        return time.perf_counter() - started
    finally:
        await overlap.abandon()
        preparing.close()


def _add(store: AuditStore, ready: Sequence[Ready]) -> None:
    store.add_batch(ready)


def _timed_verify(
    store: AuditStore,
    keys: Sequence[bytes],
    public: Mapping[str, Ed25519PublicKey],
    workers: int,
) -> tuple[float, TrailVerdict]:
    """``infoshare audit verify``'s work against the checkpoint file: every record and
    checkpoint, the anchors, and the alias, review and block indexes; and its time."""
    assert store.sealing.checkpoint_file is not None
    where = store.sealing.checkpoint_file
    started = time.perf_counter()
    verdict = verify_trail(
        store.engine,
        public_keys=public,
        anchors=lambda: [file_anchor(where)],
        chain_keys=keys,
        workers=workers,
    )
    return time.perf_counter() - started, verdict


@contextlib.contextmanager
def databases(root: Path, say: Callable[[str], None]) -> Iterator[Callable[[str, str], str]]:
    """``url(backend, name)``: a new database on each backend; PostgreSQL is a cluster of the
    benchmark's own, removed afterwards."""
    node = PostgresNode(state_dir=root / "state", port=free_listen_port())
    say("starting PostgreSQL")
    node.start()

    def url(backend: str, name: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{root / f'{name}.db'}"
        return node.ensure_database(name)

    try:
        yield url
    finally:
        node.destroy()


def run(
    sizes: Sequence[int] = (10_000, 100_000),
    report_records: int = 5_000_000,
    say: Callable[[str], None] = print,
) -> tuple[list[Result], list[ReportResult]]:
    with tempfile.TemporaryDirectory(prefix="infoshare-bench-audit-") as tmp:
        root = Path(tmp)
        with databases(root, say) as url:
            results = []
            for size in sizes:
                for backend in BACKENDS:
                    say(f"{backend}, {size} records: ingesting in batches of {BATCH}, verifying")
                    where = url(backend, f"ingest{size}")
                    alone = url(backend, f"alone{size}")
                    results.append(measure(backend, where, size, root, say=say, alone_url=alone))
            reports = [
                measure_reports(backend, url(backend, "report"), report_records, say=say)
                for backend in BACKENDS
            ]
        return results, reports


def signing_cost(
    records: int = 50_000, rounds: int = 2, say: Callable[[str], None] = print
) -> list[tuple[str, int, float]]:
    """Ingest rates with a checkpoint every 10,000 records and with one every batch, taken
    in turn on each backend, ``rounds`` times: (backend, every, records/s)."""
    out = []
    with tempfile.TemporaryDirectory(prefix="infoshare-bench-signing-") as tmp:
        root = Path(tmp)
        with databases(root, say) as url:
            for backend in BACKENDS:
                for n in range(rounds):
                    for every in (10_000, 1):
                        say(f"{backend}: a checkpoint every {every} record(s), round {n + 1}")
                        where = url(backend, f"signing{every}r{n}")
                        result = measure(backend, where, records, root, every, say)
                        out.append((backend, every, result.ingest_per_s))
    return out


def report(results: Sequence[Result], reports: Sequence[ReportResult]) -> str:

    lines = [
        "## Audit store (SQLite and PostgreSQL): sealed ingest, verify, disclosure reports",
        "",
        f"`infoshare bench audit` on {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs; SQLite in a temporary file, "
        "PostgreSQL (Debian's package; versions in the second table) as a cluster of the "
        "benchmark's own on loopback, default settings. Ingest is `AuditStore.add_batch` in "
        f"batches of {BATCH} ({LOAD_BATCH:,} above {LARGE:,} records, to load them in "
        "reasonable time), as the audit service's ingester runs it: each record parsed from "
        "its JSON and validated, its canonical bytes made and its values bound (on SQLite in "
        "a worker process while the batch before is written; on PostgreSQL in the same "
        "process, as COPY takes the rows), then checked against the stored ids, "
        "numbered, hashed, chained (HMAC) and committed with a checkpoint signed in the "
        "same transaction. *Database alone* is the yardstick: a new database of the same "
        "schema storing the same rows, read back as stored, in the same batches each "
        "committed, by the driver alone (SQLite: executemany; PostgreSQL: COPY of the rows' "
        "text), with no parsing, sealing or binding: the most an ingest could reach on that "
        "database here. Verify is `infoshare audit verify`'s work (`verify_trail` against "
        "the checkpoint file): every record re-hashed, every checkpoint's Merkle tree head "
        "recomputed and its signature checked, the alias, review and Merkle block indexes "
        "compared; with the keyring also every chain link re-computed, with public keys only "
        "(an outside verifier) not. It runs a worker process per CPU, each checking ranges of "
        "5,000 records; 'in one process' is the same walk without workers, as the audit "
        "service's own periodic check runs it. One proof is `infoshare audit prove` of the "
        "middle record from the store (the RFC 9162 path from the Merkle block index, a row "
        "per 1,024 records, and at most two blocks' record hashes; the store's root checked "
        "against the signed one first); checking it is `infoshare audit check-proof`'s work. A "
        "growth proof is `infoshare audit prove-growth` from the first checkpoint of at "
        "least half the trail to the newest (RFC 9162 consistency proof).",
        "",
        "| backend | records | batch | ingest s | ingest records/s | database alone records/s "
        "| ingest / alone | verify s | verify records/s | in one process records/s "
        "| public verify records/s | one proof ms | checking it ms | growth proof ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.records:,} | {batch_for(r.records):,} | "
            f"{r.ingest_s:.1f} | {r.ingest_per_s:.0f} | {r.alone_per_s:.0f} | "
            f"{r.ingest_per_s / r.alone_per_s if r.alone_s else 0:.2f} | "
            f"{r.verify_s:.1f} | {r.verify_per_s:.0f} | {r.one_per_s:.0f} | "
            f"{r.public_per_s:.0f} | "
            f"{r.prove_s * 1000:.1f} | {r.check_s * 1000:.2f} | {r.growth_s * 1000:.1f} |"
        )
    lines.append("")
    for backend in BACKENDS:
        mine = [r for r in results if r.backend == backend]
        if len(mine) > 1:
            a, b = mine[0], mine[-1]
            lines.append(
                f"- {backend}: verify time grows {b.verify_s / a.verify_s:.1f}x for "
                f"{b.records / a.records:.0f}x the records, one proof "
                f"{b.prove_s / a.prove_s:.1f}x; ingest at {b.records} records runs "
                f"at {b.ingest_per_s / a.ingest_per_s:.2f}x its rate at {a.records}."
            )
    lines += [
        "- For comparison, the pipeline's output: the processor's events/s (section above) "
        "times the audit records each event makes (three or four in the CP-IS protocols).",
        "",
    ]
    return "\n".join(lines) + "\n" + report_section(reports)
