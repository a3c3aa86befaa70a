"""`infoshare protocols check`: its output and exit status, as a user runs it."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from consent.policy.load import DEFAULT_DIR
from deploy.cli.main import app

runner = CliRunner()
# Every helper adds protocols: the counts follow the shipped files, not a number written here.
SHIPPED = len(list(DEFAULT_DIR.glob("*.yaml")))


def test_the_shipped_set_checks_clean() -> None:
    result = runner.invoke(app, ["protocols", "check", str(DEFAULT_DIR), "--on", "2026-11-26"])
    assert result.exit_code == 0, result.output
    # Overlapping consent, and two event types (a plan ending, a period of care ending)
    # that carry nothing to show the subject is a child: a person confirms them.
    assert result.output.strip().endswith(f"{SHIPPED} protocol(s) OK, 3 warning(s)")
    assert "warning [consent-overlap]" in result.output


def test_a_bad_set_names_file_line_and_rule_and_exits_1(tmp_path: Path) -> None:
    shutil.copytree(DEFAULT_DIR, tmp_path / "p")
    target = tmp_path / "p" / "public-health-attendance-analytics.yaml"
    lines = target.read_text().splitlines()
    n = next(i for i, line in enumerate(lines) if "allow: attendance.setting_type" in line)
    lines[n] = lines[n].replace("setting_type", "triage")
    target.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["protocols", "check", str(tmp_path / "p"), "--on", "2026-11-26"])
    assert result.exit_code == 1
    assert f"public-health-attendance-analytics.yaml:{n + 1}: error [unknown-field]" in (
        result.output
    )
    assert "1 error(s), 3 warning(s): this set would not load" in result.output


def test_validity_is_checked_as_of_a_date() -> None:
    late = runner.invoke(app, ["protocols", "check", str(DEFAULT_DIR), "--on", "2028-01-01"])
    assert late.exit_code == 0 and "warning [review]" in late.output
    expired = runner.invoke(app, ["protocols", "check", str(DEFAULT_DIR), "--on", "2029-06-01"])
    assert expired.exit_code == 1 and expired.output.count("error [expired]") == SHIPPED


def test_a_bad_date_is_a_usage_error() -> None:
    result = runner.invoke(app, ["protocols", "check", str(DEFAULT_DIR), "--on", "soon"])
    assert result.exit_code == 2
