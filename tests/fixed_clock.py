"""The suite's clock for protocols: the shipped agreements run to 2029-03-31, and a suite
that judged them on the wall clock would fail from the day after. Every test, and every
Python process a test starts (services, CLI commands, processors), judges protocols on
SUITE_TODAY instead; a test that is about the date passes its own (``today=``, ``on=``).

Only ``consent.core.clock`` is fixed: timestamps, tokens and certificates keep real time."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from consent.core import clock

SUITE_TODAY = date(2026, 12, 1)
ENV = "INFOSHARE_TEST_TODAY"
SITE_DIR = Path(__file__).resolve().parent / "clock"  # its sitecustomize.py


def fix_here_and_in_children() -> None:
    """Fix this process's clock, and, through the environment they inherit (which runs
    ``clock/sitecustomize.py`` in each), its children's."""
    os.environ[ENV] = SUITE_TODAY.isoformat()
    paths = [str(SITE_DIR), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    clock.today = lambda: SUITE_TODAY
