"""``infoshare retention report|purge``: what the stores holding deliveries for recipients
(the delivery log, each agency's inbox) hold per recipient, what is due for purge now under
the protocols' retention, and the last purge; and a purge on demand, audited in counts as
the services' own daily runs are (the work is services/ops/retention.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import orjson
import typer
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from rich.table import Table

from deploy.cli.terminal import err, fail, kafka_access, wide_out
from deploy.devstack.paths import default_state_dir
from services.backbone.errors import ConfigurationError
from services.backbone.quiet import run_quietly
from services.backbone.settings import BackboneSettings

if TYPE_CHECKING:
    from consent.core.retention import RetentionRules
    from services.ops.retention import Store, StoreReport

app = typer.Typer(
    help="Retention: deliveries held for recipients, purged once their protocol's "
    "retention has run",
    no_args_is_help=True,
)
BAD_INPUT, NO_KAFKA = 2, 3

Agencies = Annotated[
    list[str] | None,
    typer.Option(
        "--agency",
        help="only this agency's inbox (repeatable; default: every agency that runs a service)",
    ),
]
DeliveryUrl = Annotated[
    str | None,
    typer.Option(
        "--delivery-database-url",
        help="the delivery log (default: INFOSHARE_DELIVERY_DATABASE_URL, as the service)",
    ),
]
Inboxes = Annotated[
    list[str] | None,
    typer.Option(
        "--inbox",
        help="AGENCY=URL: where an agency service keeps its inbox (repeatable; default: "
        "INFOSHARE_OUTBOX_DATABASE_URL, else outbox-<agency>.db beside the keyring)",
    ),
]
Protocols = Annotated[
    Path | None,
    typer.Option(
        "--protocols", help="protocol directory (default: INFOSHARE_PROTOCOLS_DIR, else bundled)"
    ),
]


def _stores(
    agencies: list[str] | None, delivery_url: str | None, inboxes: list[str] | None
) -> list[Store]:
    from services.agency.runtime import AgencyServiceSettings
    from services.delivery.settings import DeliverySettings
    from services.ops.retention import stores_of

    try:
        settings = BackboneSettings()
        directory = settings.directory()
        given = dict(_pair(p) for p in inboxes or [])
        chosen = agencies or [a.id for a in directory.publishers]
        for agency in [*chosen, *given]:
            directory.get(agency)  # an agency nobody knows is refused
        urls = {}
        for agency in chosen:
            if agency in given:
                urls[agency] = given[agency]
                continue
            service = AgencyServiceSettings(agency_id=agency)
            if service.keyring_file is None and service.outbox_database_url is None:
                # the dev stack's layout: each service's database beside the keyring
                service = service.model_copy(
                    update={"keyring_file": default_state_dir() / "keyring.yaml"}
                )
            urls[agency] = service.outbox_url()
        delivery = delivery_url or DeliverySettings().delivery_database_url.get_secret_value()
    except ValidationError as exc:  # which setting and rule, never the value given
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise fail(f"INFOSHARE_* settings: {problems}", BAD_INPUT) from None
    except (ConfigurationError, KeyError) as exc:
        raise fail(str(exc).strip("'\""), BAD_INPUT) from None
    topics = settings.topics()
    return stores_of(
        delivery_url=delivery, inbox_urls=urls, inbox_topics={a: topics.deliver(a) for a in urls}
    )


def _pair(text: str) -> tuple[str, str]:
    agency, sep, url = text.partition("=")
    if not sep or not agency or not url:
        raise fail("--inbox wants AGENCY=URL", BAD_INPUT)
    return agency, url


def _rules(protocols: Path | None) -> RetentionRules:
    from consent.policy.load import ProtocolError, retention_rules
    from consent.processor.settings import ProcessorSettings

    try:
        settings = ProcessorSettings()
        return retention_rules(
            protocols or settings.protocols_dir,
            directory=settings.directory(),
            schemas=settings.schemas(),
        )
    except (ProtocolError, ConfigurationError, ValidationError) as exc:
        first = str(exc).splitlines()[:6]
        raise fail("the protocol set does not load: " + " ".join(first), BAD_INPUT) from None


def _table(reports: list[StoreReport]) -> Table:
    table = Table(title="Deliveries held for recipients, and their retention")
    for column in ("store", "recipient", "held", "due now", "no retention", "last purge"):
        table.add_column(column, justify="right" if column in {"held", "due now"} else "left")
    for report in reports:
        last = report.last
        when = "never"
        if last is not None:
            when = f"{last.at:%Y-%m-%d %H:%M} UTC: {last.total} purged"
            when += "" if last.audited else " (audit record not yet sent)"
        if report.problem:
            table.add_row(report.store, "-", "-", "-", "-", report.problem)
        elif not report.holdings:
            table.add_row(report.store, "(none)", "0", "0", "0", when)
        for h in report.holdings:
            by = last.by_recipient.get(h.recipient, 0) if last else 0
            said = f"{when}; {by} of this recipient's" if last and last.total else when
            table.add_row(report.store, h.recipient, str(h.held), str(h.due), str(h.kept), said)
    return table


@app.command("report", short_help="Per store and recipient: held, due for purge, last purge")
def report_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="JSON for machines")] = False,
    agency: Agencies = None,
    delivery_database_url: DeliveryUrl = None,
    inbox: Inboxes = None,
    protocols: Protocols = None,
) -> None:
    """Per store (the delivery log, each agency's inbox) and recipient: how many deliveries
    are held, how many are due for purge now (held past their protocol rule's retention),
    how many have no retention stated or known (kept), and the store's last purge: when, how
    many, and whether its audit record has gone out. Counts only. Reads; changes nothing.
    Exit 0, or 2 on bad settings or a protocol set that does not load."""
    from services.ops.retention import report

    rules = _rules(protocols)
    found = report(_stores(agency, delivery_database_url, inbox), rules, now=datetime.now(UTC))
    if as_json:
        doc = {"stores": [r.to_json() for r in found]}
        typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    wide_out().print(_table(found))


@app.command("purge", short_help="Purge what is held past its retention now, audited")
def purge_cmd(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    agency: Agencies = None,
    delivery_database_url: DeliveryUrl = None,
    inbox: Inboxes = None,
    protocols: Protocols = None,
) -> None:
    """Purge, now, every delivery held past its retention in the stores (as each service
    does at start and daily), then send each store's audit record (counts only) to
    audit.activity. Exit 0 purged and audited; 3 purged but Kafka unreachable (the records
    wait in the stores and each service sends its own at its next run); 2 bad input."""
    from services.ops.deadletters import cli_actor
    from services.ops.retention import purge, report, send_audits

    rules = _rules(protocols)
    stores = _stores(agency, delivery_database_url, inbox)
    settings = BackboneSettings()
    access = kafka_access(settings)  # refused before anything is purged
    now = datetime.now(UTC)
    due = sum(h.due for r in report(stores, rules, now=now) for h in r.holdings)
    out = wide_out()
    if not yes:
        try:
            if not typer.confirm(f"Purge {due} deliveries held past their retention?", err=True):
                raise fail("nothing purged", 1)
        except click.Abort:
            raise fail("nothing purged", 1) from None
    done, busy = purge(stores, rules, now=now, actor=cli_actor())
    for store in busy:
        err.print(f"{store}: passed over, its service is purging it now", markup=False)
    for store, tally in done.items():
        of_inbox = store.startswith("inbox:")
        nouns = ("received items", "received item") if of_inbox else ("deliveries", "delivery")
        out.print(f"{store}: {tally.reason(nouns[0], one=nouns[1])}", markup=False)
    try:
        sent = run_quietly(
            send_audits(
                stores,
                access,
                settings.topics().audit_activity,
                now=lambda: datetime.now(UTC),
            )
        )
    except (KafkaError, OSError) as exc:
        raise fail(
            f"purged, but the audit records are not sent yet ({type(exc).__name__}): each "
            "service sends its store's at its next run",
            NO_KAFKA,
        ) from None
    out.print(f"{sent} purge record(s) sent to {settings.topics().audit_activity}")
