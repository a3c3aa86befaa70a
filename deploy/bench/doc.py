"""Keep docs/benchmarks.md as one section per benchmark, each replaced by its latest run."""

from __future__ import annotations

from pathlib import Path

HEADER = (
    "# Benchmarks\n\nEach section is written by the command it names; numbers from one run.\n\n"
)


def replace_section(path: Path, heading: str, text: str) -> None:
    """Replace the ``## heading`` section of ``path`` (or append it) with ``text``."""
    current = path.read_text(encoding="utf-8") if path.exists() else HEADER
    sections = current.split("\n## ")
    head, rest = sections[0], ["## " + s for s in sections[1:]]
    kept = [s for s in rest if not s.startswith(heading)]
    body = "\n".join(s.rstrip("\n") + "\n" for s in [*kept, text])
    path.write_text(head.rstrip("\n") + "\n\n" + body, encoding="utf-8")
