"""``infoshare dlq``: list, inspect and retry dead letters (the reading, choosing and
re-publishing are services/ops; what may be shown, services/ops/deadletter_view.py)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import click
import orjson
import typer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from deploy.cli.dlq_view import list_table, render_detail
from deploy.cli.terminal import err, fail, kafka_access, wide_out
from services.backbone.audit_contract import AuditOutcome
from services.backbone.kafka import KafkaUnavailable
from services.backbone.kafka_access import KafkaAccess
from services.backbone.quiet import run_quietly
from services.backbone.settings import BackboneSettings
from services.backbone.topics import Topics
from services.ops.deadletter_view import detail, summary
from services.ops.deadletters import Stage, cli_actor, publish_retries, read_letters
from services.ops.retry_choice import OWNED_ELSEWHERE, SelectionError, select

app = typer.Typer(
    help="Dead letters: records a stage could not process, with why (values never shown)",
    no_args_is_help=True,
)


T = TypeVar("T")
BAD_INPUT, NO_KAFKA = 2, 3
PROGRESS_OVER = 5


# ---------------------------------------------------------------- the commands

StageArg = Annotated[
    Stage, typer.Argument(help="the stage whose dead letters: processor, audit, delivery or outbox")
]
Offset = Annotated[int, typer.Argument(min=0, help="the dead letter's offset (see dlq list)")]
Partition = Annotated[
    int, typer.Option(min=0, help="partition of the dlq topic (they have one: 0)")
]
Json = Annotated[bool, typer.Option("--json", help="JSON for machines instead of tables")]
Bootstrap = Annotated[
    str | None,
    typer.Option(help="Kafka bootstrap (default: INFOSHARE_KAFKA_BOOTSTRAP, else 127.0.0.1:9092)"),
]
Namespace = Annotated[
    str | None,
    typer.Option(help="topic-name prefix (default: INFOSHARE_TOPIC_NAMESPACE, else none)"),
]


def _settings(bootstrap: str | None, namespace: str | None) -> tuple[KafkaAccess, Topics]:
    try:
        settings = BackboneSettings()
    except ValidationError as exc:  # say which setting and rule, never the value given
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise fail(f"INFOSHARE_* settings: {problems}", BAD_INPUT) from None
    prefix = settings.topic_namespace if namespace is None else namespace
    return kafka_access(settings, bootstrap), Topics(namespace=prefix)


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return run_quietly(work)
    except KafkaUnavailable as exc:
        raise fail(f"{exc} (is it running? see `infoshare kafka status`)", NO_KAFKA) from None


def _confirmed(question: str) -> bool:
    try:
        return typer.confirm(question, err=True)
    except click.Abort:  # end of input: nobody said yes
        return False


def _json(doc: object) -> None:
    typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())


@app.command("list", short_help="One row per dead letter: where, when, from where, why")
def list_cmd(
    stage: Annotated[
        Stage | None, typer.Option(help="only this stage's dead letters (default: every stage)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="show at most this many, oldest first")] = 200,
    as_json: Json = False,
    bootstrap: Bootstrap = None,
    namespace: Namespace = None,
) -> None:
    """One row per dead letter, oldest first: where it is, when, where it came from, which
    event and why. Reads up to the end found at the start, so it always finishes."""
    server, topics = _settings(bootstrap, namespace)
    stages = {topics.dlq(s): s.value for s in ([stage] if stage else list(Stage))}
    rows = [summary(d) for d in _run(read_letters(server, stages))]
    out = wide_out()
    if as_json:
        _json({"total": len(rows), "dead_letters": rows[:limit]})
    elif not rows:
        out.print("no dead letters" + (f" in {topics.dlq(stage)}" if stage else ""))
    else:
        out.print(list_table(rows[:limit], title=f"Dead letters ({len(rows)})"))
        if len(rows) > limit:
            out.print(f"{len(rows) - limit} more not shown (raise --limit)")


@app.command("show", short_help="One dead letter: headers, origin, payload shape (no values)")
def show_cmd(
    stage: StageArg,
    offset: Offset,
    partition: Partition = 0,
    as_json: Json = False,
    bootstrap: Bootstrap = None,
    namespace: Namespace = None,
) -> None:
    """One dead letter: its headers (those that could hold personal data by size only), its
    reason and origin, whether it has a key, and the payload's shape: field paths with types
    and sizes, never a value. Exit 2 if there is no dead letter at OFFSET."""
    server, topics = _settings(bootstrap, namespace)
    topic = topics.dlq(stage)
    window = (partition, offset, offset + 1)
    letters = _run(read_letters(server, {topic: stage.value}, window=window))
    found = [d for d in letters if (d.partition, d.offset) == (partition, offset)]
    if not found:
        raise fail(f"no dead letter at {topic}[{partition}]@{offset}", BAD_INPUT)
    view = detail(found[0])
    if as_json:
        _json(view)
    else:
        render_detail(view, wide_out())


@app.command("retry", short_help="Re-publish dead letters to their origin, audited")
def retry_cmd(
    stage: StageArg,
    offsets: Annotated[
        list[int] | None, typer.Argument(help="offsets of the dead letters to retry")
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="every dead letter of the stage (see --reason-contains)")
    ] = False,
    reason_contains: Annotated[
        str | None, typer.Option(help="only dead letters whose reason contains this text")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what would be retried; publish nothing")
    ] = False,
    partition: Partition = 0,
    bootstrap: Bootstrap = None,
    namespace: Namespace = None,
) -> None:
    """Re-publish dead letters to their origin topics (same key, value and headers, without
    the dlq_* ones, plus infoshare_retry_of), each audited as retried in the same Kafka
    transaction. Retrying a letter twice is harmless: the processor drops an event id it has
    already decided, and the audit store keeps one record per audit id. Delivery dead letters
    are the delivery service's to resend (POST /subscriptions/{id}/resend); outbox ones, the
    agency's to send again once the broker's refusal is mended."""
    if stage in OWNED_ELSEWHERE:
        raise fail(OWNED_ELSEWHERE[stage], BAD_INPUT)
    if everything == bool(offsets):
        raise fail("name the dead letters' offsets or give --all (not both)", BAD_INPUT)
    server, topics = _settings(bootstrap, namespace)
    letters = _run(read_letters(server, {topics.dlq(stage): stage.value}))
    try:
        chosen, passed = select(
            letters,
            topics=topics,
            offsets=offsets or [],
            everything=everything,
            reason_contains=reason_contains,
            partition=partition,
        )
    except SelectionError as exc:
        raise fail(f"{topics.dlq(stage)}: {exc}", BAD_INPUT) from None
    for letter, why in passed:
        err.print(f"passed over {letter.where}: {why}", markup=False)
    out = wide_out()
    if not chosen:
        out.print("no dead letters to retry")
        return
    out.print(list_table([summary(d) for d in chosen], title="To retry"))
    if dry_run:
        out.print(f"dry run: {len(chosen)} dead letter(s) would be retried; nothing published")
        return
    if not yes and not _confirmed(f"Retry {len(chosen)} dead letter(s)?"):
        raise fail("nothing retried", 1)
    done = 0

    def committed(count: int) -> None:
        nonlocal done
        done += count
        if len(chosen) > PROGRESS_OVER:
            err.print(f"committed {done} of {len(chosen)}")

    try:
        _run(publish_retries(server, chosen, topics=topics, actor=cli_actor(), advance=committed))
    except KafkaError as exc:
        left = len(chosen) - done
        raise fail(f"{type(exc).__name__}: {left} of {len(chosen)} not retried", 1) from None
    out.print(f"retried {len(chosen)} dead letter(s); each audited as {AuditOutcome.RETRIED}")
