"""The suite judges protocols on a fixed day (tests/fixed_clock.py), in its own process and
in every process it starts, so it does not start failing when the shipped protocols reach
their end date."""

from __future__ import annotations

import os
import subprocess
import sys

from consent.core import clock
from consent.policy.load import load_protocols
from services.backbone.directory import Directory
from services.backbone.schemas import SchemaRegistry
from tests.fixed_clock import SUITE_TODAY


def test_protocols_are_judged_on_the_suites_day_here(directory: Directory) -> None:
    assert clock.today() == SUITE_TODAY
    shipped = load_protocols(None, directory=directory, schemas=SchemaRegistry.load())
    assert all(p.in_force(SUITE_TODAY) for p in shipped)


def test_and_in_every_process_a_test_starts() -> None:
    said = subprocess.run(
        [sys.executable, "-c", "from consent.core import clock; print(clock.today())"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",  # not the checkout: only what the environment carries
        env=dict(os.environ),
    )
    assert said.stdout.strip() == SUITE_TODAY.isoformat()
