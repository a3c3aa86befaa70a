"""`infoshare dlq` without a broker: what `show` may print (never a payload value, never the
key), which dead letters a retry takes, what it re-publishes and audits, and exit codes."""

from __future__ import annotations

import io
import re
import string
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import typer
from aiokafka.errors import KafkaError
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from deploy.cli import dlq_cmd
from deploy.cli.dlq_view import list_table, render_detail
from deploy.cli.main import app
from services.backbone.audit_contract import AuditOutcome, audit_id_for
from services.backbone.deadletter import DeadLetter, Header, retry_headers
from services.backbone.kafka import KafkaUnavailable
from services.backbone.kafka_access import KafkaAccess
from services.backbone.topics import Topics
from services.ops.deadletter_view import detail, header_view, payload_shape, summary
from services.ops.deadletters import retry_audit
from services.ops.retry_choice import SelectionError, select

TOPICS = Topics(namespace="ns.")
SOURCE = TOPICS.source("nhs-riverside-ed")
KEY = b"f00dfeedcafe" * 3
runner = CliRunner()


def letter(
    offset: int = 3,
    *,
    value: bytes | None = b'{"subject": {"nhs_number": "9990000123"}}',
    reason: str = "subject.nhs_number: check digit",
    origin: tuple[str, int, int] | None = (SOURCE, 0, 41),
    stage: str = "processor",
    extra: Sequence[Header] = (),
) -> DeadLetter:
    headers: list[Header] = [
        ("ce_specversion", b"1.0"),
        ("ce_id", f"event-{offset}".encode()),
        ("ce_source", b"/agencies/nhs-riverside-ed"),
        ("ce_type", b"health.unscheduled_care.attendance"),
        *extra,
        ("dlq_reason", reason.encode()),
    ]
    if origin is not None:
        headers += [
            ("dlq_topic", origin[0].encode()),
            ("dlq_partition", str(origin[1]).encode()),
            ("dlq_offset", str(origin[2]).encode()),
        ]
    topic = TOPICS.dlq(stage)
    return DeadLetter(stage, topic, 0, offset, 1_795_000_000_000, KEY, value, tuple(headers))


def shown(d: DeadLetter) -> str:
    """Everything `dlq show` and `dlq list` print for ``d``, tables and JSON."""
    console = Console(file=io.StringIO(), record=True, width=10_000)
    render_detail(detail(d), console)
    console.print(list_table([summary(d)], title="t"))
    return console.export_text() + orjson.dumps(detail(d)).decode()


# ---------------------------------------------------------------- what show may print

# Each begins with a letter the tables never print by themselves: a value of digits alone
# ("000000") would be found in a timestamp, not because it leaked.
VALUES = st.text(
    alphabet=string.ascii_uppercase + string.digits + "ÆØÅ", min_size=5, max_size=15
).map(lambda s: "Ø" + s)
FIELDS = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=10)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(0, 1e6) | VALUES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(FIELDS, inner, max_size=4),
    max_leaves=30,
)


def strings_in(doc: Any) -> list[str]:
    if isinstance(doc, str):
        return [doc]
    if isinstance(doc, dict):
        return [s for v in doc.values() for s in strings_in(v)]
    if isinstance(doc, list):
        return [s for v in doc for s in strings_in(v)]
    return []


@given(doc=JSON)
def test_no_string_of_any_payload_is_ever_shown(doc: Any) -> None:
    text = shown(letter(value=orjson.dumps(doc)))
    for value in strings_in(doc):
        assert value not in text
    assert KEY.decode() not in text


def test_the_shape_names_paths_types_and_sizes() -> None:
    doc = {
        "subject": {"nhs_number": "9990000123", "given_name": "Maisie"},
        "visits": [{"site": "RVR01"}, {"site": "RVR0", "note": None}, 7],
        "flag": True,
        "score": 1.5,
    }
    shape = payload_shape(orjson.dumps(doc))
    assert shape["json"] is True and shape["note"] is None
    assert [(f["path"], f["type"]) for f in shape["fields"]] == [
        ("(payload)", "object (4 fields)"),
        ("subject", "object (2 fields)"),
        ("subject.nhs_number", "string (10 chars)"),
        ("subject.given_name", "string (6 chars)"),
        ("visits", "array (3 items)"),
        ("visits[*]", "object (1-2 fields) | integer"),
        ("visits[*].site", "string (4-5 chars)"),
        ("visits[*].note", "null"),
        ("flag", "boolean"),
        ("score", "number"),
    ]


def test_a_key_that_could_be_an_identifier_is_shown_only_by_length() -> None:
    doc = {"9990000123": {"Jane Smith": 1, "ok_name": 2}}
    paths = [f["path"] for f in payload_shape(orjson.dumps(doc))["fields"]]
    assert paths == [
        "(payload)",
        "<key of 10 chars>",
        "<key of 10 chars>.<key of 10 chars>",
        "<key of 10 chars>.ok_name",
    ]
    assert "9990000123" not in shown(letter(value=orjson.dumps(doc)))


def test_a_payload_that_is_not_json_or_absent_says_so() -> None:
    not_json = payload_shape(b"Maisie Testchild 9990000123")
    assert not not_json["json"] and not_json["fields"] == []
    assert "not JSON (27 bytes)" in not_json["note"]
    text = shown(letter(value=b"Maisie Testchild 9990000123"))
    assert "not JSON" in text and "Maisie" not in text
    assert payload_shape(None)["note"] == "no payload (null value)"


def test_deep_or_wide_payloads_are_cut_short_and_say_so() -> None:
    deep: Any = "x"
    for _ in range(80):
        deep = {"a": deep}
    assert "deeper than 64 levels" in payload_shape(orjson.dumps(deep))["note"]
    wide = payload_shape(orjson.dumps({f"f{n}": n for n in range(600)}))
    assert len(wide["fields"]) == 500 and "101 more paths" in wide["note"]


def test_headers_are_shown_only_from_the_allow_list() -> None:
    view = header_view(
        [
            ("ce_type", b"health.unscheduled_care.attendance"),
            ("ce_subject", b"9990000123"),
            ("tracestate", b"vendor=Maisie"),
            ("x-patient", b"Testchild"),
            ("ce_id", b"a\x1b[31mb"),
            ("dlq_reason", None),
        ]
    )
    assert view == [
        {"name": "ce_type", "value": "health.unscheduled_care.attendance"},
        {"name": "ce_subject", "value": None, "bytes": 10},
        {"name": "tracestate", "value": None, "bytes": 13},
        {"name": "x-patient", "value": None, "bytes": 9},
        {"name": "ce_id", "value": "a?[31mb"},  # no terminal escapes from a producer
        {"name": "dlq_reason", "value": None, "bytes": None},
    ]
    text = shown(letter(extra=[("ce_subject", b"9990000123"), ("x-name", b"Maisie")]))
    assert "9990000123" not in text and "Maisie" not in text
    assert "(not shown: 10 bytes)" in text


# ---------------------------------------------------------------- which letters a retry takes


def test_select_named_offsets_once_each_in_the_order_given() -> None:
    letters = [letter(0), letter(2), letter(4)]
    chosen, passed = select(letters, topics=TOPICS, offsets=[4, 0, 4], everything=False)
    assert [d.offset for d in chosen] == [4, 0] and passed == []


@pytest.mark.parametrize(
    ("offsets", "everything", "message"),
    [
        ([], False, "name the dead letters' offsets or give --all"),
        ([0], True, "name the dead letters' offsets or give --all"),
        ([0, 1, 9], False, "no dead letter at offset(s) 1, 9"),
    ],
)
def test_select_refuses_what_it_cannot_do(
    offsets: list[int], everything: bool, message: str
) -> None:
    with pytest.raises(SelectionError, match=re.escape(message)):
        select([letter(0)], topics=TOPICS, offsets=offsets, everything=everything)


def test_select_by_reason_is_case_blind() -> None:
    letters = [letter(0), letter(2, reason="missing ce_dataschema"), letter(4)]
    chosen, passed = select(
        letters, topics=TOPICS, offsets=[], everything=True, reason_contains="NHS_number"
    )
    assert [d.offset for d in chosen] == [0, 4]
    assert [(d.offset, why) for d, why in passed] == [
        (2, "its reason does not contain 'NHS_number'")
    ]


def test_a_letter_never_goes_back_to_a_topic_its_stage_does_not_read() -> None:
    forged = letter(2, origin=(TOPICS.deliver("la-northshire"), 0, 1))
    nameless = letter(4, origin=None)
    with pytest.raises(SelectionError, match=r"ns\.dlq\.processor@2 cannot be retried"):
        select([forged], topics=TOPICS, offsets=[2], everything=False)
    chosen, passed = select(
        [letter(0), forged, nameless], topics=TOPICS, offsets=[], everything=True
    )
    assert [d.offset for d in chosen] == [0]
    assert [why for _, why in passed] == [
        "its origin ns.deliver.la-northshire is not a topic the processor stage reads",
        "its dlq_topic/dlq_partition/dlq_offset headers do not name an origin",
    ]
    audit_letter = letter(1, stage="audit", origin=(TOPICS.audit, 2, 9))
    assert select([audit_letter], topics=TOPICS, offsets=[1], everything=False)[0]
    with pytest.raises(SelectionError):
        select([letter(1, stage="audit")], topics=TOPICS, offsets=[1], everything=False)


# ---------------------------------------------------------------- what a retry writes


def test_the_retried_record_keeps_its_headers_without_the_dead_letters() -> None:
    d = letter(
        7,
        extra=[("traceparent", b"00-abc-def-01"), ("infoshare_retry_of", b"old"), ("x", None)],
    )
    assert retry_headers(d) == [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"event-7"),
        ("ce_source", b"/agencies/nhs-riverside-ed"),
        ("ce_type", b"health.unscheduled_care.attendance"),
        ("traceparent", b"00-abc-def-01"),
        ("x", None),
        ("infoshare_retry_of", b"ns.dlq.processor@7"),
    ]


def test_the_retry_is_audited_by_who_what_and_where_never_a_value() -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    audit = retry_audit(letter(7), actor="infoshare-cli:ops", now=now, topics=TOPICS)
    assert audit.audit_id == audit_id_for(
        topic="ns.dlq.processor", partition=0, offset=7, recipient=None, protocol="dlq-retry"
    )
    assert (audit.action, audit.decision, audit.actor) == (
        "dlq_retry",
        AuditOutcome.RETRIED,
        "infoshare-cli:ops",
    )
    assert (audit.event_id, audit.event_type) == ("event-7", "health.unscheduled_care.attendance")
    assert audit.reason == (
        "dead letter ns.dlq.processor@7 re-published to its origin ns.source.nhs-riverside-ed[0]@41"
    )
    assert (audit.source_agency, audit.topic_in, audit.offset_in, audit.topic_out) == (
        "nhs-riverside-ed",
        "ns.dlq.processor",
        7,
        SOURCE,
    )
    assert "9990000123" not in audit.model_dump_json()


# ---------------------------------------------------------------- the commands, no broker


class Kafka:
    """Stands in for read_letters and publish_retries: what was read, what was published."""

    def __init__(self, letters: list[DeadLetter] | None = None, *, down: bool = False) -> None:
        self.letters = letters or []
        self.down = down
        self.published: list[DeadLetter] = []

    async def read(self, access: KafkaAccess, stages: dict[str, str], **_: Any) -> list[DeadLetter]:
        if self.down:
            raise KafkaUnavailable(f"cannot reach Kafka at {access.bootstrap}")
        return [d for d in self.letters if d.topic in stages]

    async def publish(self, access: KafkaAccess, letters: list[DeadLetter], **kw: Any) -> None:
        for n in range(len(letters)):
            self.published.append(letters[n])
            kw["advance"](1)


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> Kafka:
    return stand_in(monkeypatch, [letter(n) for n in range(0, 16, 2)])


def stand_in(monkeypatch: pytest.MonkeyPatch, letters: list[DeadLetter]) -> Kafka:
    """A Kafka holding ``letters`` in place of the command's, signed in as an operator."""
    fake = Kafka(letters)
    monkeypatch.setattr(dlq_cmd, "read_letters", fake.read)
    monkeypatch.setattr(dlq_cmd, "publish_retries", fake.publish)
    monkeypatch.setenv("INFOSHARE_TOPIC_NAMESPACE", "ns.")
    monkeypatch.setenv("INFOSHARE_KAFKA_USERNAME", "operator")
    monkeypatch.setenv("INFOSHARE_KAFKA_PASSWORD", "operator-password")
    monkeypatch.setenv("COLUMNS", "300")
    return fake


def test_without_a_kafka_principal_it_says_which_settings(
    kafka: Kafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INFOSHARE_KAFKA_USERNAME")
    result = runner.invoke(app, ["dlq", "list"])
    assert result.exit_code == 2
    assert "INFOSHARE_KAFKA_USERNAME" in result.output
    monkeypatch.setenv("INFOSHARE_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    result = runner.invoke(app, ["dlq", "list", "--bootstrap", "kafka.example.org:9092"])
    assert result.exit_code == 2
    assert "loopback only" in result.output


def test_unreachable_kafka_exits_3(kafka: Kafka) -> None:
    kafka.down = True
    for args in (["list"], ["show", "processor", "0"], ["retry", "processor", "0"]):
        result = runner.invoke(app, ["dlq", *args, "--bootstrap", "kafka.invalid:9092"])
        assert result.exit_code == 3, result.output
        assert "cannot reach Kafka at kafka.invalid:9092" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["retry", "delivery", "0", "--yes"],
        ["retry", "processor"],
        ["retry", "processor", "0", "--all"],
        ["retry", "processor", "1", "--yes"],
        ["show", "processor", "1"],
        ["show", "processor", "-1"],
        ["list", "--stage", "dispatch"],
        ["list", "--limit", "0"],
    ],
)
def test_bad_input_exits_2_and_publishes_nothing(kafka: Kafka, args: list[str]) -> None:
    result = runner.invoke(app, ["dlq", *args])
    assert result.exit_code == 2, result.output
    assert kafka.published == []


def test_delivery_is_the_delivery_services_to_resend(kafka: Kafka) -> None:
    result = runner.invoke(app, ["dlq", "retry", "delivery", "--all", "--yes"])
    assert "POST /subscriptions/{id}/resend" in result.output


def test_list_says_when_there_are_none(kafka: Kafka) -> None:
    kafka.letters = []
    result = runner.invoke(app, ["dlq", "list"])
    assert result.exit_code == 0 and "no dead letters" in result.output
    assert orjson.loads(runner.invoke(app, ["dlq", "list", "--json"]).stdout) == {
        "total": 0,
        "dead_letters": [],
    }


def test_list_limits_and_says_how_many_more(kafka: Kafka) -> None:
    result = runner.invoke(app, ["dlq", "list", "--limit", "3"])
    assert result.exit_code == 0
    assert "Dead letters (8)" in result.output and "5 more not shown" in result.output


def test_retry_asks_first_and_a_dry_run_publishes_nothing(kafka: Kafka) -> None:
    declined = runner.invoke(app, ["dlq", "retry", "processor", "0", "2"], input="n\n")
    assert declined.exit_code == 1 and "nothing retried" in declined.output
    dry = runner.invoke(app, ["dlq", "retry", "processor", "--all", "--dry-run"])
    assert dry.exit_code == 0 and "8 dead letter(s) would be retried" in dry.output
    assert kafka.published == []
    agreed = runner.invoke(app, ["dlq", "retry", "processor", "0", "2"], input="y\n")
    assert agreed.exit_code == 0, agreed.output
    assert [d.offset for d in kafka.published] == [0, 2]
    assert "committed" not in agreed.output  # two letters: no progress lines


def test_retrying_many_reports_progress(kafka: Kafka) -> None:
    result = runner.invoke(app, ["dlq", "retry", "processor", "--all", "--yes"])
    assert result.exit_code == 0, result.output
    assert "committed 1 of 8" in result.output and "committed 8 of 8" in result.output
    assert "retried 8 dead letter(s)" in result.output
    assert len(kafka.published) == 8


def test_every_command_and_option_has_help() -> None:
    group = typer.main.get_command(app).commands["dlq"]  # type: ignore[attr-defined]
    assert group.help
    for name, command in group.commands.items():
        assert command.help, name
        for param in command.params:
            assert getattr(param, "help", None), f"{name} {param.name}"


def test_a_failed_transaction_says_how_many_were_not_retried(
    kafka: Kafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fails_after_one_batch(
        access: KafkaAccess, letters: list[DeadLetter], **kw: Any
    ) -> None:
        kw["advance"](3)
        raise KafkaError("the broker refused a record")

    monkeypatch.setattr(dlq_cmd, "publish_retries", fails_after_one_batch)
    result = runner.invoke(app, ["dlq", "retry", "processor", "--all", "--yes"])
    assert result.exit_code == 1
    assert "KafkaError: 5 of 8 not retried" in result.output


def test_nothing_matching_is_nothing_to_do(kafka: Kafka) -> None:
    result = runner.invoke(
        app, ["dlq", "retry", "processor", "--all", "--reason-contains", "schema", "--yes"]
    )
    assert result.exit_code == 0 and "no dead letters to retry" in result.output
    assert kafka.published == []
