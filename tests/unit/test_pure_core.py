"""The decision core imports no Kafka, HTTP or database library (see CONVENTIONS.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = [
    "consent.core.model",
    "consent.core.fields",
    "consent.core.decide",
    "consent.core.state",
    "consent.core.retention",
    "consent.core.purge_log",
    "services.audit.chain",
    "services.audit.transparency",
    "services.audit.console.sharing_map",
    "services.agency.children",
    "services.personindex.matching",
]
FORBIDDEN = ["aiokafka", "fastapi", "sqlmodel", "sqlalchemy", "starlette"]

PROGRAM = f"""
import importlib, sys
for name in {CORE!r}:
    importlib.import_module(name)
loaded = sorted(m for m in {FORBIDDEN!r} if m in sys.modules)
print(",".join(loaded))
"""


def edge_libraries_loaded(program: str) -> list[str]:
    """Run ``program`` in a fresh interpreter: in this one, other tests loaded the edges."""
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return [m for m in result.stdout.strip().split(",") if m]


def test_the_core_imports_no_edge_library() -> None:
    assert edge_libraries_loaded(PROGRAM) == []


def test_the_check_sees_an_edge_library() -> None:
    program = PROGRAM.replace("loaded =", "import fastapi\nloaded =")
    assert edge_libraries_loaded(program) == ["fastapi", "starlette"]
