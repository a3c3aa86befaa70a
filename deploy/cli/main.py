"""The ``infoshare`` command: one Typer app made of the command groups, each in a module of
its own. Commands parse arguments and print; the work lives in the rooms they call."""

from __future__ import annotations

import typer

from deploy.cli import (
    audit_cmd,
    bench_cmd,
    browser_cmd,
    dlq_cmd,
    kafka_cmd,
    keys_cmd,
    mutate_cmd,
    observe_cmd,
    persons_cmd,
    postgres_cmd,
    protocols_cmd,
    protocols_simulate,
    replay_cmd,
    retention_cmd,
    run_cmd,
    stack_cmd,
    status_cmd,
    terminal,
    transparency_cmd,
    users_cmd,
    witness_cmd,
)
from deploy.devstack.paths import default_state_dir

app = typer.Typer(
    help="infoshare: information sharing between schools, social care and the NHS",
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    add_completion=False,
)


# Commands that run components never take the administrator's settings: each component
# connects as its own principal.
RUNS_COMPONENTS = frozenset({"run", "up", "demo"})


@app.callback()
def _defaults(ctx: typer.Context) -> None:
    """infoshare: information sharing between schools, social care and the NHS"""
    if ctx.invoked_subcommand not in RUNS_COMPONENTS:
        terminal.stack_admin_defaults(default_state_dir())


app.command("up")(stack_cmd.up)
app.command("demo")(stack_cmd.demo)
app.command("run")(run_cmd.run)
app.command("status", short_help="One screen: health, lag, dead letters, circuits, audit")(
    status_cmd.status
)
app.command("replay", short_help="Decide a range of a source topic again, audited as replay")(
    replay_cmd.replay
)
app.add_typer(kafka_cmd.app, name="kafka")
app.add_typer(postgres_cmd.app, name="postgres")
app.add_typer(observe_cmd.app, name="observe")
app.add_typer(browser_cmd.app, name="browser")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(users_cmd.app, name="users")
protocols_cmd.app.command("simulate")(protocols_simulate.simulate_cmd)
app.add_typer(protocols_cmd.app, name="protocols")
app.add_typer(dlq_cmd.app, name="dlq")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(transparency_cmd.app, name="transparency")
app.add_typer(retention_cmd.app, name="retention")
app.add_typer(witness_cmd.app, name="witness")
app.add_typer(persons_cmd.app, name="persons")
app.add_typer(bench_cmd.app, name="bench")
app.command("mutate", short_help="Mutation testing of the policy core and the audit chain")(
    mutate_cmd.mutate
)

if __name__ == "__main__":
    app()
