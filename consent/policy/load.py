"""Load a directory of protocol YAML files into a checked, indexed protocol set.

A set with any error never loads: every problem is collected, named by file, line and
rule, and raised together, so a running processor keeps its last good set.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from consent.core import clock
from consent.core.model import ProtocolSet
from consent.core.retention import RetentionRules
from consent.policy.checks import check_protocols
from consent.policy.checks_children import check_children
from consent.policy.parse import Problem, parse_protocol
from consent.policy.yaml_marks import StrictYamlError, load_marked
from services.backbone.directory import Directory
from services.backbone.schemas import SchemaRegistry

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "protocols"


class ProtocolError(Exception):
    """The protocol set is invalid; ``problems`` lists every error found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("invalid protocol set:\n  " + "\n  ".join(map(str, problems)))
        self.problems = problems


@dataclass(frozen=True)
class Checked:
    protocols: ProtocolSet
    warnings: list[Problem]


def check_directory(
    directory_path: Path | None,
    *,
    directory: Directory,
    schemas: SchemaRegistry,
    today: date | None = None,
) -> tuple[Checked | None, list[Problem]]:
    """Parse and check every ``*.yaml`` protocol; (the set, []) or (None, the problems).

    Warnings (a review date passed) never stop a set from loading; they come back with it.
    """
    root = directory_path or DEFAULT_DIR
    today = today or clock.today()
    files = sorted(root.glob("*.yaml"))
    if not files:
        return None, [Problem(str(root), 0, "empty", "no protocol files (*.yaml)")]
    problems: list[Problem] = []
    parsed = []
    for path in files:
        try:
            marked = load_marked(path.read_text(encoding="utf-8"))
        except OSError as exc:
            problems.append(Problem(path.name, 0, "yaml", f"cannot be read: {exc.strerror}"))
            continue
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 0
            problems.append(Problem(path.name, line, "yaml", f"not valid YAML: {exc}"))
            continue
        except StrictYamlError as exc:
            problems.append(Problem(path.name, exc.line, "yaml", str(exc)))
            continue
        except Exception as exc:
            problems.append(Problem(path.name, 0, "yaml", f"cannot be read: {type(exc).__name__}"))
            continue
        try:
            protocol = parse_protocol(
                marked,
                file=path.name,
                directory=directory,
                problems=problems,
                known_event_types=lambda t: t in schemas.event_types,
                today=today,
            )
        except Exception as exc:
            problems.append(Problem(path.name, 0, "malformed", f"{type(exc).__name__}: {exc}"))
            continue
        if protocol is not None:
            parsed.append(protocol)
            problems += check_children(protocol, marked, schemas)
    problems += check_protocols(parsed, schemas)
    errors = [p for p in problems if not p.warning]
    warnings = [p for p in problems if p.warning]
    if errors:
        return None, errors + warnings
    return Checked(ProtocolSet(tuple(parsed)), warnings), warnings


def load_protocols(
    directory_path: Path | None,
    *,
    directory: Directory,
    schemas: SchemaRegistry,
    today: date | None = None,
) -> ProtocolSet:
    """The checked protocol set, or ProtocolError listing every error."""
    checked, problems = check_directory(
        directory_path, directory=directory, schemas=schemas, today=today
    )
    if checked is None:
        raise ProtocolError([p for p in problems if not p.warning])
    return checked.protocols


def retention_rules(
    directory_path: Path | None, *, directory: Directory, schemas: SchemaRegistry
) -> RetentionRules:
    """The retention each protocol of the set states per recipient (for the stores that
    purge), or ProtocolError: a set that does not load purges nothing."""
    return RetentionRules.of(
        load_protocols(directory_path, directory=directory, schemas=schemas).protocols
    )
