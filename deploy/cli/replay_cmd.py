"""``infoshare replay``: decide a range of a source topic again under today's protocols and
consent, audited as a replay run (see consent/processor/replay.py)."""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from aiokafka.errors import KafkaConnectionError, KafkaError
from pydantic import ValidationError
from rich.table import Table

from deploy.cli.terminal import err, fail, kafka_access, out
from services.backbone.errors import ConfigurationError
from services.backbone.kafka import KafkaUnavailable
from services.backbone.kafka_access import KafkaAccess
from services.backbone.quiet import run_quietly

if TYPE_CHECKING:
    from consent.processor.handle import Context
    from consent.processor.replay import ReplayRange, ReplayReport

T = TypeVar("T")

BAD_INPUT, NO_KAFKA = 2, 3


def _moment(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"{option}: not an ISO 8601 date-time (e.g. 2026-11-20T09:00Z)", 2) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def replay(
    source: Annotated[str, typer.Option(help="the publishing agency whose topic to replay")],
    since: Annotated[
        str | None, typer.Option(help="first record time, ISO 8601 (UTC if no zone)")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="stop before this record time, ISO 8601")
    ] = None,
    partition: Annotated[
        list[int] | None, typer.Option(help="only this partition (repeatable)", min=0)
    ] = None,
    from_offset: Annotated[
        int | None, typer.Option(help="first offset (with --partition)", min=0)
    ] = None,
    to_offset: Annotated[
        int | None, typer.Option(help="stop before this offset (with --partition)", min=0)
    ] = None,
    recipient: Annotated[
        str | None, typer.Option(help="keep only this recipient's decisions and deliveries")
    ] = None,
    run: Annotated[
        str | None,
        typer.Option(help="run id; the same id again yields the same ids (default: a new one)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show the ranges and count; write nothing")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Decide a range of a source topic again under today's protocols, consent and plan
    state. Deliveries keep the ids recipients saw before (a recipient that has one drops it)
    and carry the run id; every decision is audited with action `replay`. Nothing old is
    re-sent as it was: what a protocol no longer allows is withheld, and audited so."""
    from consent.policy.load import ProtocolError
    from consent.processor.main import context
    from consent.processor.replay import ReplayRange, for_run, new_run_id, plan_offsets
    from consent.processor.settings import ProcessorSettings

    start, stop = _moment(since, "--since"), _moment(until, "--until")
    if start and stop and start >= stop:
        raise fail("--since must be before --until", BAD_INPUT)
    if (from_offset is not None or to_offset is not None) and not partition:
        raise fail("--from-offset and --to-offset need --partition", BAD_INPUT)
    try:
        settings = ProcessorSettings()
        ctx = context(settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(f"setting {first['loc'][0]}: {first['msg']}", BAD_INPUT) from None
    except (ConfigurationError, ProtocolError) as exc:
        raise fail(str(exc), BAD_INPUT) from None
    if source not in {a.id for a in ctx.directory.publishers}:
        names = ", ".join(a.id for a in ctx.directory.publishers)
        raise fail(f"{source!r} publishes nothing; one of: {names}", BAD_INPUT)
    if recipient and recipient not in ctx.directory:
        raise fail(f"unknown recipient {recipient!r}", BAD_INPUT)
    what = ReplayRange(
        topic=ctx.topics.source(source),
        partitions=tuple(partition or ()),
        since=start,
        until=stop,
        from_offset=from_offset,
        to_offset=to_offset,
    )
    access = kafka_access(settings)
    try:
        ranges = _run(plan_offsets(access, what))
    except ValueError as exc:
        raise fail(str(exc), BAD_INPUT) from None
    total = sum(b - a for a, b in ranges.values())
    for tp, (a, b) in sorted(ranges.items()):
        out.print(f"{tp.topic}[{tp.partition}] offsets {a}..{b - 1}: {b - a} record(s)")
    if not total:
        out.print("nothing to replay in that range")
        return
    if dry_run:
        out.print(f"dry run: {total} record(s) would be decided again; nothing written")
        return
    if not yes and not typer.confirm(f"Decide {total} record(s) again and deliver?"):
        raise typer.Exit(code=1)
    run_id = run or new_run_id(datetime.now(UTC))
    out.print(
        f"run {run_id} (should it stop half-way, the same command with --run {run_id} resumes it)"
    )
    _execute(for_run(ctx, run_id), access, what, recipient, total)


def _execute(
    ctx: Context, access: KafkaAccess, what: ReplayRange, recipient: str | None, total: int
) -> None:
    from consent.processor.replay import replay as run_replay

    last = [0]

    def progress(report: ReplayReport) -> None:
        if report.read - last[0] >= 1000 or report.read == total:
            last[0] = report.read
            err.print(f"decided {report.read}/{total}")

    report = _run(run_replay(ctx, access=access, what=what, recipient=recipient, progress=progress))
    table = Table(title=f"Replay {report.run}: decisions, audited with action 'replay'")
    for column in ("recipient", "decision", "count"):
        table.add_column(column)
    for (who, decision), count in sorted(report.outcomes.items()):
        table.add_row(who, decision, str(count))
    out.print(table)
    out.print(f"{report.read} record(s) decided again under run {report.run}")
    if report.resumed:
        out.print(f"{report.resumed} record(s) an earlier attempt of this run had decided")
    if report.duplicates:
        out.print(f"{report.duplicates} copy(ies) of earlier events skipped, as when first read")
    if report.unprocessable:
        out.print(
            f"{report.unprocessable} record(s) could not be processed; they went to the dead "
            "letter topic when first read (see `infoshare dlq list`)"
        )


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return run_quietly(work)
    except (KafkaConnectionError, KafkaUnavailable) as exc:
        raise fail(
            f"cannot reach Kafka ({type(exc).__name__}); see `infoshare kafka status`", NO_KAFKA
        ) from None
    except KafkaError as exc:
        raise fail(
            f"Kafka failed the replay ({type(exc).__name__}); the batch in flight was not "
            "committed: run the same command with the same --run to resume it",
            1,
        ) from None
