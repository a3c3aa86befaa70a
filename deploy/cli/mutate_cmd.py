"""``infoshare mutate``: mutation testing of the policy core and the audit chain (``make
mutate``), each in a copy of the tree; prints the score per target and what survived."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from deploy.cli.terminal import err, out

ROOT = Path(__file__).resolve().parents[2]


def mutate(
    target: Annotated[
        list[str] | None,
        typer.Option(
            metavar="TARGET", help="consent/core or audit-chain (repeat it) [default: both]"
        ),
    ] = None,
    children: Annotated[int, typer.Option(min=1, help="mutants tested at once")] = 1,
    show: Annotated[bool, typer.Option(help="print each survivor's diff")] = False,
    keep: Annotated[
        bool, typer.Option(help="keep the copies (mutmut browse, mutmut show there)")
    ] = False,
) -> None:
    """Run mutmut over consent/core and services/audit/chain.py with the unit tests that
    cover each, one target at a time, in a copy of the tree: print killed, timed out,
    survived and total per target, and the survivors."""
    from deploy.devstack.mutate import (
        TARGETS,
        MutateError,
        Score,
        report,
        run_target,
        target_named,
        workspace,
    )
    from deploy.devstack.mutate import show as show_mutant

    try:
        chosen = [target_named(name) for name in target] if target else list(TARGETS)
    except MutateError as exc:
        raise typer.BadParameter(str(exc)) from None
    base = Path(tempfile.mkdtemp(prefix="infoshare-mutate-"))
    scores: list[Score] = []
    try:
        for t in chosen:
            work = workspace(ROOT, base / t.name.replace("/", "-"), t)
            score = run_target(work, t, children=children, say=err.print)
            scores.append(score)
            for name, status in score.survivors:
                out.print(f"{t.name}: {status}: {name}", markup=False)
                if show:
                    out.print(show_mutant(work, name), markup=False, highlight=False)
    except MutateError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(1) from None
    finally:
        if keep:
            err.print(f"kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    out.print(report(scores), markup=False, highlight=False)
