"""Play the CP-IS scenario against a running stack and show what each agency received and
what the audit trail recorded."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from services.cli import scenario
from services.cli.stack import Stack

EXPECTED_DECISIONS = 5  # plan flag; attendance A to LA and PH; attendance B to LA and PH


class ScenarioFailed(RuntimeError):
    """The system did not do what the scenario expects within the time allowed."""


@dataclass
class Outcome:
    received: dict[str, list[dict[str, Any]]]
    audit: list[dict[str, Any]]


def wait_for(what: str, check: Callable[[], bool], *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise ScenarioFailed(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def _accepted(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 202:
        raise ScenarioFailed(
            f"{response.request.url} answered {response.status_code}: {response.text[:300]}"
        )
    body: dict[str, Any] = response.json()
    return body


def play(stack: Stack, *, say: Callable[[str], None] = print, timeout: float = 30.0) -> Outcome:
    socialcare, health = stack.url("socialcare"), stack.url("health")
    delivery, audit = stack.url("delivery"), stack.url("audit")
    with httpx.Client(timeout=10.0) as http:

        def inbox(url: str) -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = http.get(url).json()["items"]
            return items

        def audit_rows() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = http.get(
                f"{audit}/audit/decisions", params={"limit": 1000}
            ).json()["items"]
            return rows

        say("1. Social care places a child on a child protection plan")
        _accepted(
            http.post(
                f"{socialcare}/child-protection-plans", json=scenario.plan_started(scenario.ON_PLAN)
            )
        )
        wait_for(
            "the ED to receive the plan flag",
            lambda: len(inbox(f"{health}/inbox")) >= 1,
            timeout=timeout,
        )
        say("2. The child attends the emergency department")
        fhir = {"content-type": "application/fhir+json"}
        _accepted(
            http.post(
                f"{health}/fhir/Bundle",
                headers=fhir,
                content=orjson.dumps(scenario.attendance_bundle(scenario.ON_PLAN)),
            )
        )
        say("3. A child who is not on a plan attends the emergency department")
        _accepted(
            http.post(
                f"{health}/fhir/Bundle",
                headers=fhir,
                content=orjson.dumps(
                    scenario.attendance_bundle(
                        scenario.NOT_ON_PLAN,
                        encounter_id="ED-77840",
                        arrival="2026-11-20T22:03:00Z",
                    )
                ),
            )
        )
        wait_for(
            "the authority to be notified",
            lambda: len(inbox(f"{socialcare}/inbox")) >= 1,
            timeout=timeout,
        )
        wait_for(
            "public health to receive both attendances",
            lambda: len(inbox(f"{delivery}/recipients/ph-northshire/inbox")) >= 2,
            timeout=timeout,
        )
        wait_for(
            "every decision in the audit trail",
            lambda: len(audit_rows()) >= EXPECTED_DECISIONS,
            timeout=timeout,
        )
        return Outcome(
            received={
                "nhs-riverside-ed": inbox(f"{health}/inbox"),
                "la-northshire": inbox(f"{socialcare}/inbox"),
                "ph-northshire": inbox(f"{delivery}/recipients/ph-northshire/inbox"),
            },
            audit=audit_rows(),
        )


def _leaves(data: Any, prefix: str = "") -> list[str]:
    if isinstance(data, dict):
        return [line for k, v in data.items() for line in _leaves(v, f"{prefix}{k}.")]
    return [f"{prefix[:-1]} = {data}"]


def render(outcome: Outcome, console: Console) -> None:
    for agency, items in outcome.received.items():
        table = Table(title=f"Received by {agency}", show_lines=True, expand=True)
        table.add_column("#", justify="right")
        table.add_column("event type")
        table.add_column("protocol, identity level")
        table.add_column("data exactly as delivered", overflow="fold")
        for item in items:
            table.add_row(
                str(item["number"]),
                item["type"],
                f"{item['protocol']}\n{item['identity_level']}",
                "\n".join(_leaves(item["data"])),
            )
        console.print(table)
    table = Table(
        title="Audit trail: every decision with its reason (never a payload)",
        show_lines=True,
        expand=True,
    )
    for column in (
        "event type",
        "from -> to",
        "decision",
        "reason",
        "fields disclosed",
        "trace id",
    ):
        table.add_column(column, overflow="fold")
    for row in outcome.audit:
        fields = row["fields_disclosed"] + [f"{f} (pseudonym)" for f in row["fields_pseudonymised"]]
        table.add_row(
            row["event_type"] or "",
            f"{row['source_agency'] or ''}\n-> {row['recipient'] or '-'}",
            row["decision"],
            row["reason"],
            "\n".join(fields),
            (row["trace_id"] or "")[:16],
        )
    console.print(table)
