"""`infoshare status` without a broker or a service: how answers (and silences) are judged,
and what the screen and the JSON say about down and degraded components, lag, dead letters,
circuits and the audit checkpoint."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from deploy.cli.status_view import age, render
from services.ops.status_judge import (
    audit_from,
    circuits_from,
    judge_http,
    judge_processor,
    reader_offsets,
)
from services.ops.status_model import (
    AuditCheckpointStatus,
    Circuit,
    ComponentStatus,
    DeadLetterDepth,
    GroupLag,
    KafkaStatus,
    PartitionLag,
    Probe,
    Report,
    State,
)

KAFKA = KafkaStatus("127.0.0.1:9092", True)
URL = "http://127.0.0.1:8120/healthz"


def text(report: Report, *, partitions: bool = False) -> str:
    out = Console(file=io.StringIO(), width=220, record=True, color_system=None)
    for part in render(report, partitions=partitions):
        out.print(part)
    return out.export_text()


def rows(screen: str, first: str) -> list[list[str]]:
    """The cells of every table row whose first cell is ``first``."""
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in screen.splitlines()]
    return [r for r in cells if r and r[0] == first]


def row(screen: str, first: str) -> list[str]:
    """The cells of the one table row whose first cell is ``first``."""
    found = rows(screen, first)
    assert len(found) == 1, screen
    return found[0]


def up(name: str, *facts: str) -> ComponentStatus:
    return ComponentStatus(name, f"http://127.0.0.1/{name}", State.UP, facts=facts)


def ok(body: dict[str, Any]) -> Probe:
    return Probe(URL, 200, {"status": "ok", **body})


def test_down_and_degraded_components_show_as_such_with_why_and_exit_unhealthy() -> None:
    report = Report(
        kafka=KAFKA,
        components=(
            ComponentStatus("processor", "http://127.0.0.1:8140/metrics", State.DOWN, "gone"),
            ComponentStatus("socialcare", URL, State.DEGRADED, "its outbox cannot reach Kafka"),
            up("audit", "12 audit records"),
        ),
    )
    screen = text(report)
    assert row(screen, "processor")[1:] == ["DOWN", "http://127.0.0.1:8140/metrics", "gone"]
    assert row(screen, "socialcare")[1:] == ["DEGRADED", URL, "its outbox cannot reach Kafka"]
    assert row(screen, "audit")[1:] == ["up", "http://127.0.0.1/audit", "12 audit records"]
    assert "attention: processor DOWN, socialcare DEGRADED" in screen
    assert not report.healthy
    assert report.to_json()["healthy"] is False


def test_every_component_up_and_kafka_reachable_is_healthy() -> None:
    report = Report(kafka=KAFKA, components=(up("audit"), up("consent")))
    assert report.healthy
    assert "all healthy" in text(report)


def test_kafka_unreachable_is_down_and_lag_unknown() -> None:
    report = Report(
        kafka=KafkaStatus("127.0.0.1:9092", False, "cannot connect"),
        components=(up("audit"),),
        groups=(GroupLag("audit", "infoshare-audit", known=False, note="Kafka did not answer"),),
    )
    screen = text(report)
    assert row(screen, "kafka") == [
        "kafka",
        "DOWN",
        "127.0.0.1:9092",
        "not reachable (cannot connect)",
    ]
    assert rows(screen, "audit")[-1][1:] == ["infoshare-audit", "-", "?", "Kafka did not answer"]
    assert not report.healthy and "attention: kafka DOWN" in screen


def test_lag_per_group_and_per_partition_with_upper_bounds_marked() -> None:
    parts = (
        PartitionLag("source.la", 0, 5, 9, 4, True),
        PartitionLag("source.la", 1, None, 3, 3, False),
    )
    report = Report(
        kafka=KAFKA,
        components=(),
        groups=(GroupLag("processor", "infoshare-processor", 1, parts),),
        dead_letters=(DeadLetterDepth("dlq.processor", 2, True),),
    )
    assert row(text(report), "processor") == ["processor", "infoshare-processor", "1", "≤7", ""]
    screen = text(report, partitions=True)
    assert rows(screen, "processor") == [
        ["processor", "source.la", "0", "5", "9", "4"],
        ["processor", "source.la", "1", "-", "3", "≤3"],
    ]
    assert "≤: an upper bound" in screen
    assert row(screen, "dlq.processor") == ["dlq.processor", "2"]
    doc = report.to_json()
    assert doc["groups"][0]["lag"] == 7 and doc["groups"][0]["exact"] is False


def test_circuits_show_recipient_and_state_never_the_endpoint() -> None:
    probe = ok(
        {
            "circuits": [
                {"recipient": "la-northshire", "state": "open", "failures": 5, "retry_in_s": 12},
                {"recipient": "school-oakfield", "state": "closed", "failures": 0},
                {"recipient": "x", "state": "half-open", "endpoint": "https://h/?token=s3cret"},
            ]
        }
    )
    circuits = circuits_from(probe)
    assert circuits is not None and len(circuits) == 3
    screen = text(Report(kafka=KAFKA, components=(), circuits=circuits))
    assert row(screen, "la-northshire") == ["la-northshire", "open", "5", "12s"]
    assert row(screen, "x") == ["x", "half-open", "0", "?"]
    assert "1 closed" in screen and "school-oakfield" not in screen
    assert "s3cret" not in screen and "token" not in screen
    calm = text(Report(kafka=KAFKA, components=(), circuits=(Circuit("a", "closed", 0),)))
    assert "webhook circuits: 1 closed, none open" in calm
    unknown = text(Report(kafka=KAFKA, components=(), circuits=circuits_from(Probe(URL))))
    assert "webhook circuits: unknown" in unknown


def test_audit_checkpoint_line() -> None:
    probe = ok(
        {"records": 40, "last_checkpoint": {"tree_size": 30, "created_at": "T", "age_s": 90}}
    )
    audit = audit_from(probe)
    assert audit == AuditCheckpointStatus(40, 30, "T", 90.0)
    assert "records 1-30 signed at T (2m ago); 40 records stored" in text(
        Report(kafka=KAFKA, components=(), audit=audit)
    )
    none_yet = audit_from(ok({"records": 0, "last_checkpoint": None}))
    assert "none yet (0 records stored)" in text(Report(kafka=KAFKA, components=(), audit=none_yet))
    assert audit_from(Probe(URL, error="cannot connect")) is None
    assert "audit checkpoint: unknown" in text(Report(kafka=KAFKA, components=()))


def test_judge_http_components() -> None:
    assert judge_http("consent", ok({})).state is State.UP
    refused = judge_http("consent", Probe(URL, error="cannot connect"))
    assert (refused.state, refused.reason) == (State.DOWN, "not answering (cannot connect)")
    failing = judge_http("consent", Probe(URL, 503, {"status": "ok"}))
    assert (failing.state, failing.reason) == (State.DOWN, "answered HTTP 503")
    assert judge_http("consent", Probe(URL, 200, None)).state is State.DEGRADED
    said = judge_http("consent", Probe(URL, 200, {"status": "failing", "reason": "db locked"}))
    assert (said.state, said.reason) == (State.DEGRADED, "reports status 'failing': db locked")
    outbox = {"pending": 3, "oldest_pending_s": 61.2, "dead_lettered": 1, "kafka_connected": False}
    agency = judge_http("socialcare", ok({"agency": "la", "outbox": outbox}))
    assert (agency.state, agency.reason) == (State.DEGRADED, "its outbox cannot reach Kafka")
    assert agency.facts == ("outbox 3 pending, oldest 61s", "outbox 1 dead-lettered")
    for calm in ({"oldest_pending_s": 1.0}, {"pending": 0}, {"kafka_connected": True}):
        # Just accepted; idle since it started (never connected yet); publishing: all up.
        assert judge_http("socialcare", ok({"outbox": outbox | calm})).state is State.UP
    delivery = judge_http("delivery", ok({"alerts": 2, "open_breakers": 1}))
    assert delivery.state is State.UP
    assert delivery.facts == ("2 notification(s) given up on", "1 webhook circuit(s) not closed")


def test_judge_processor_from_metrics_and_group() -> None:
    answers, silent = Probe("m", 200), Probe("m", error="cannot connect")
    judge = judge_processor
    assert judge(answers, group="g", members=1).state is State.UP
    assert judge(answers, group="g", members=None).state is State.UP  # Kafka down: said there
    assert judge(answers, group="g", members=0).state is State.DEGRADED
    lingering = judge(silent, group="g", members=1)  # a killed process's member, not yet expired
    assert lingering.state is State.DEGRADED and "has a member" in lingering.reason
    assert judge(silent, group="g", members=0).state is State.DOWN
    assert judge(silent, group="g", members=None).state is State.DOWN


def test_reader_offsets_keep_only_well_formed_rows() -> None:
    probe = ok(
        {
            "reader_offsets": [
                {"topic": "deliver.a", "partition": 0, "next_offset": 7},
                {"topic": "deliver.a", "partition": "1", "next_offset": 7},
                "junk",
            ]
        }
    )
    assert reader_offsets(probe) == {("deliver.a", 0): 7}
    assert reader_offsets(Probe(URL, error="cannot connect")) is None


def test_markup_in_an_answer_is_shown_as_text() -> None:
    odd = ComponentStatus("consent", URL, State.DEGRADED, "[bold red]fake[/]")
    assert "[bold red]fake[/]" in text(Report(kafka=KAFKA, components=(odd,)))


def test_age() -> None:
    assert [age(None), age(5), age(90), age(7200), age(3 * 86400)] == ["?", "5s", "2m", "2h", "3d"]
