"""Benchmark of ``infoshare protocols simulate`` over a large file of stored events: the
shipped protocols, alone and beside a changed copy (a dry run of a protocol change), with
one worker process and with one per CPU. Run by ``infoshare bench simulate``; a script that
measures and reports, never a test."""

from __future__ import annotations

import os
import platform
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from consent.policy.load import DEFAULT_DIR, load_protocols
from consent.policy.simulate_many import simulate_file
from deploy.bench.fastpath.harness import padded
from deploy.bench.loadgen import ED_SOURCE, LA, Workload
from services.backbone.directory import load_directory
from services.backbone.schemas import SchemaRegistry
from services.health.fhir_mapping import ATTENDANCE

SEED = 18
GOAL = 30_000  # events/s over a million stored events (issue 18)


def events_file(cache_dir: Path, events: int, say: Callable[[str], None]) -> Path:
    """A JSON-lines file of ``events`` seeded events of about 1 KB (plans, then
    attendances, the state of each child's plan beside its attendances), made once and kept
    in the cache."""
    target = cache_dir / "bench-simulate" / f"events-{events}-{SEED}.jsonl"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    directory = load_directory(None)
    workload = Workload.make(
        events=events, children=max(1, events // 50), authority_name=directory.get(LA).name
    )
    rng = random.Random(SEED)  # noqa: S311  (seeded filler, not a secret)
    plans: dict[str, dict[str, str]] = {}
    partial = target.with_suffix(".part")
    written = 0
    with partial.open("wb") as fh:
        for child, event_type, data in padded(workload, 1024, rng.randrange(1 << 30)):
            line: dict[str, object] = {"type": event_type, "data": data}
            if event_type == ATTENDANCE:
                line["source"] = ED_SOURCE
                plan = plans.get(child.nhs_number)
                if plan is not None:
                    line["state"] = {"protection_plan": plan}
            else:
                line["source"] = LA
                plans[child.nhs_number] = {
                    "authority": LA,
                    "plan_id": str(data["plan"]["plan_id"]),
                    "category": str(data["plan"]["category"]),
                    "start_date": str(data["plan"]["start_date"]),
                }
            fh.write(orjson.dumps(line) + b"\n")
            written += 1
            if written % 100_000 == 0:
                say(f"written {written:,} events to {target.name}")
    partial.replace(target)
    return target


@dataclass(frozen=True)
class Run:
    name: str
    workers: int
    events: int
    seconds: float
    changed: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def run(cache_dir: Path, events: int, say: Callable[[str], None]) -> list[Run]:
    path = events_file(cache_dir, events, say)
    registry, directory = SchemaRegistry.load(), load_directory(None)
    live = load_protocols(DEFAULT_DIR, directory=directory, schemas=registry)
    changed_dir = cache_dir / "bench-simulate" / "candidate"
    shutil.rmtree(changed_dir, ignore_errors=True)
    shutil.copytree(DEFAULT_DIR, changed_dir)
    early = changed_dir / "early-help-attendance.yaml"
    early.write_text(
        early.read_text().replace("consent: required_unless_override", "consent: not_required")
    )
    candidate = load_protocols(changed_dir, directory=directory, schemas=registry)
    cpus = os.cpu_count() or 1
    runs = []
    for name, compared in (("the shipped set", None), ("a change beside the live set", live)):
        for workers in sorted({1, cpus}):
            say(f"simulating {name}, {workers} worker(s)")
            started = time.perf_counter()
            tally = simulate_file(path, candidate if compared else live, compared, workers=workers)
            seconds = time.perf_counter() - started
            runs.append(Run(name, workers, tally.events, seconds, tally.changed))
    return runs


def report(runs: list[Run], events: int) -> str:
    best = max(r.rate for r in runs if r.name == "the shipped set")
    lines = [
        "## Protocol simulation",
        "",
        f"`infoshare bench simulate --events {events}` on {platform.python_implementation()}"
        f" {platform.python_version()}, {os.cpu_count()} CPUs: a JSON-lines file of"
        f" {events:,} seeded events of about 1 KB (plans, then attendances with their plan"
        " state), decided by the shipped protocols alone, then by a change (early help without"
        " consent) beside the live set. Dry-run decisions: the same outcomes and field lists as"
        " the processor's, with no value keyed or sealed.",
        "",
        "| protocols | workers | events/s | seconds | decisions changed |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {r.name} | {r.workers} | {r.rate:,.0f} | {r.seconds:,.1f} | {r.changed:,} |"
            for r in runs
        ),
        "",
        f"Best over the shipped set: **{best:,.0f} events/s** (goal: at least {GOAL:,}).",
        "",
    ]
    return "\n".join(lines)
