"""``infoshare run NAME``: one component in the foreground, configured by ``INFOSHARE_*``
variables; how a deployment runs each process (see services/ops/components.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from deploy.cli.terminal import fail


def run(
    component: Annotated[
        str,
        typer.Argument(
            help="processor | audit | consent | delivery | socialcare | health | education"
        ),
    ],
) -> None:
    """Run one component in the foreground; settings come from INFOSHARE_* variables."""
    from services.ops.components import BY_NAME, run_component

    if component not in BY_NAME:
        raise fail(f"unknown component {component!r}; one of: {', '.join(BY_NAME)}")
    run_component(component)
