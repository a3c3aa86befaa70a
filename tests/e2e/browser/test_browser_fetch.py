"""`infoshare browser fetch --quiet`, as make test runs it before the suite: once its tools
are in place, it succeeds and says nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_fetch_again_is_quiet() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deploy.cli.main", "browser", "fetch", "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
