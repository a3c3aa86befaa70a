"""`make mutate`'s runner (deploy/devstack/mutate.py) without running mutmut: the copy it
runs in, the configuration it gives mutmut, and how it reads and reports the scores."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from deploy.devstack.mutate import (
    TARGETS,
    MutateError,
    Score,
    Target,
    parse_results,
    report,
    target_named,
    workspace,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_each_target_names_files_that_exist(target: Target) -> None:
    """A renamed module or test file fails here, not an hour into a mutation run."""
    assert target_named(target.name) is target
    assert all(any(ROOT.glob(pattern)) for pattern in target.mutate)
    assert target.tests and all((ROOT / test).is_file() for test in target.tests)
    assert all(test.startswith("tests/unit/") for test in target.tests)


def test_an_unknown_target_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(MutateError, match="consent/core, audit-chain"):
        target_named("consent")


def test_the_copy_holds_the_tree_and_mutmuts_configuration(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "consent" / "core" / "__pycache__").mkdir(parents=True)
    (root / "consent" / "core" / "decide.py").write_text("X = 1\n")
    (root / "consent" / "core" / "__pycache__" / "decide.cpython-311.pyc").write_bytes(b"")
    (root / "pyproject.toml").write_text('[project]\nname = "infoshare"\n')
    target = target_named("consent/core")
    work = workspace(root, tmp_path / "work", target)
    assert (work / "consent" / "core" / "decide.py").read_text() == "X = 1\n"
    assert not (work / "consent" / "core" / "__pycache__").exists()
    assert not (root / "mutants").exists()
    doc = tomllib.loads((work / "pyproject.toml").read_text())
    assert doc["project"]["name"] == "infoshare"
    config = doc["tool"]["mutmut"]
    assert config["only_mutate"] == ["consent/core/*"]
    assert config["pytest_add_cli_args_test_selection"] == list(target.tests)


def test_survivors_are_read_from_mutmuts_results() -> None:
    text = (
        "    consent.core.plan.x_plans_for__mutmut_3: survived\n"
        "    services.audit.chain.xǁProblemǁ__str____mutmut_1: no tests\n"
        "    services.audit.chain.x_merkle_root__mutmut_6: timeout\n"
        "Some other line\n"
    )
    assert parse_results(text) == (
        ("consent.core.plan.x_plans_for__mutmut_3", "survived"),
        ("services.audit.chain.xǁProblemǁ__str____mutmut_1", "no tests"),
        ("services.audit.chain.x_merkle_root__mutmut_6", "timeout"),
    )


def test_the_report_gives_each_targets_counts_and_score() -> None:
    counts = {"killed": 90, "timeout": 5, "survived": 4, "no_tests": 1, "total": 100}
    text = report([Score("audit-chain", counts, (), 150.0)])
    row = text.splitlines()[1].split()
    assert row == ["audit-chain", "90", "5", "4", "1", "0", "0", "100", "95.0%", "2.5m"]
