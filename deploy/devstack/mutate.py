"""Mutation testing of the pure cores (``infoshare mutate``, ``make mutate``): mutmut over the
policy core (consent/core) and the audit trail's hash chain (services/audit/chain.py), each
with only the fast unit tests that cover it, and a score per target.

mutmut rewrites what it mutates into ``mutants/`` beside the tree it runs in, so it runs in a
copy of the tree made for the run, never in the working tree. One target at a time, with one
worker by default: a run is minutes on a loaded two-core machine, not hours."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# What a target's tests import or read: the packages, the event contracts, the documents'
# examples, the test suite.
COPIED = ("consent", "services", "deploy", "schemas", "docs", "tests", "pyproject.toml")
_JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache")


@dataclass(frozen=True)
class Target:
    name: str
    mutate: tuple[str, ...]  # globs of the files mutated (mutmut's only_mutate)
    tests: tuple[str, ...]  # the unit test modules run against each mutant


TARGETS = (
    Target(
        "consent/core",
        ("consent/core/*",),
        tuple(
            f"tests/unit/test_{name}.py"
            for name in (
                "access_back",
                "amendment_decisions",
                "cel_subset",
                "cel_subset_mutants",
                "consent",
                "consent_expiry",
                "core_mutants",
                "data_keys",
                "decide",
                "decide_mutants",
                "education_protocol",
                "fields",
                "handle",
                "health_sharing",
                "paths_mutants",
                "plan",
                "protocol_checks_children_conditions",
                "protocol_set",
                "recall_processor",
                "retention",
                "rule_kinds",
                "simulate",
                "socialcare_sharing",
                "state",
            )
        ),
    ),
    Target(
        "audit-chain",
        ("services/audit/chain.py",),
        tuple(
            f"tests/unit/test_{name}.py"
            for name in ("audit_chain", "audit_chain_mutants", "audit_proofs")
        ),
    ),
)


class MutateError(Exception):
    """The run could not be made: mutmut missing, or it failed before scoring."""


@dataclass(frozen=True)
class Score:
    target: str
    counts: Mapping[str, int]  # mutmut's export-cicd-stats
    survivors: tuple[tuple[str, str], ...]  # (mutant, status) of those not caught
    seconds: float

    def count(self, status: str) -> int:
        return int(self.counts.get(status, 0))

    @property
    def caught(self) -> int:
        """Killed, or stopped by the time limit (a mutant that loops forever)."""
        return self.count("killed") + self.count("timeout")


def target_named(name: str) -> Target:
    for target in TARGETS:
        if target.name == name:
            return target
    raise MutateError(f"no target {name!r}: one of {', '.join(t.name for t in TARGETS)}")


def mutmut_command() -> Path:
    """mutmut beside this interpreter (the mutate extra installs it)."""
    found = Path(sys.executable).with_name("mutmut")
    if not found.exists():
        raise MutateError(f"{found} is missing: pip install -e '.[mutate]' (make mutate does)")
    return found


def mutmut_config(target: Target) -> str:
    """The ``[tool.mutmut]`` table for ``target``. Every package is copied to ``mutants/``
    (only the target's files mutated) so that the tests import all of it from there."""
    lists = {
        "source_paths": ["consent", "services"],
        "only_mutate": list(target.mutate),
        "pytest_add_cli_args_test_selection": list(target.tests),
        "also_copy": ["deploy", "schemas", "docs"],
        # Caches emptied before every test, no shrinking (mutate_plugin.py says why).
        "pytest_add_cli_args": ["-p", "deploy.devstack.mutate_plugin"],
    }
    # A JSON list of plain strings is a TOML array.
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in lists.items())
    return "\n[tool.mutmut]\n" + lines


def workspace(root: Path, into: Path, target: Target) -> Path:
    """A copy of the tree at ``root`` in ``into``, set up for mutmut to mutate ``target``."""
    into.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=_JUNK, dirs_exist_ok=True)
        elif source.exists():
            shutil.copy2(source, into / name)
    project = into / "pyproject.toml"
    project.write_text(project.read_text(encoding="utf-8") + mutmut_config(target), "utf-8")
    return into


def parse_results(text: str) -> tuple[tuple[str, str], ...]:
    """``mutmut results``' lines (``    name: status``) as (name, status) pairs."""
    pairs = []
    for line in text.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and name and " " not in name:
            pairs.append((name, status))
    return tuple(pairs)


def run_target(
    work: Path,
    target: Target,
    *,
    children: int = 1,
    say: Callable[[str], None] = lambda _: None,
) -> Score:
    """Run mutmut in ``work`` (a :func:`workspace`) and read back its score; its output goes
    to ``work/mutmut.log``."""
    mutmut = str(mutmut_command())
    log = work / "mutmut.log"
    started = time.monotonic()
    say(f"mutating {target.name} ({', '.join(target.mutate)}), log in {log}")
    with log.open("wb") as sink:
        ran = subprocess.run(
            [mutmut, "run", "--max-children", str(children)],
            cwd=work,
            stdout=sink,
            stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.monotonic() - started
    if ran.returncode != 0:
        tail = log.read_bytes()[-2000:].decode("utf-8", "replace")
        raise MutateError(f"mutmut run failed ({ran.returncode}) for {target.name}:\n{tail}")
    subprocess.run([mutmut, "export-cicd-stats"], cwd=work, capture_output=True, check=True)
    counts = json.loads((work / "mutants" / "mutmut-cicd-stats.json").read_text("utf-8"))
    results = subprocess.run(
        [mutmut, "results"], cwd=work, capture_output=True, text=True, check=True
    )
    survivors = tuple(
        (name, status) for name, status in parse_results(results.stdout) if status != "timeout"
    )
    return Score(target.name, {k: int(v) for k, v in counts.items()}, survivors, seconds)


def show(work: Path, mutant: str) -> str:
    """The diff of one mutant, as ``mutmut show`` prints it."""
    shown = subprocess.run(
        [str(mutmut_command()), "show", mutant], cwd=work, capture_output=True, text=True
    )
    return shown.stdout


def report(scores: Sequence[Score]) -> str:
    """One line per target: caught (killed or timed out) of all mutants, and what was not
    (``segfault``: the test run died, as a mutant that eats memory until it is killed)."""
    head = (
        f"{'target':<14}{'killed':>8}{'timeout':>9}{'survived':>10}{'no tests':>10}"
        f"{'suspicious':>12}{'segfault':>10}{'total':>7}{'score':>8}{'time':>8}"
    )
    rows = [head]
    for s in scores:
        total = s.count("total")
        score = f"{100 * s.caught / total:.1f}%" if total else "-"
        rows.append(
            f"{s.target:<14}{s.count('killed'):>8}{s.count('timeout'):>9}"
            f"{s.count('survived'):>10}{s.count('no_tests'):>10}{s.count('suspicious'):>12}"
            f"{s.count('segfault'):>10}{total:>7}{score:>8}{s.seconds / 60:>7.1f}m"
        )
    rows.append("score: (killed + timeout) / total")
    return "\n".join(rows)
