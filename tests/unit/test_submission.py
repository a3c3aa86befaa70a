"""An agency's submission as a use case with plain arguments (services/agency/submission.py),
run without the web framework: all events or none, a retry answered not repeated, a key
re-used for another request refused, an event too large for Kafka refused, an override
carried to the events. The stores are the real ones, on SQLite files of the test's own."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.exc import OperationalError

from deploy.devstack.demo import scenario
from services.agency.submission import Intake, Outgoing, Override, Submission, submit
from services.backbone import envelope
from services.backbone.errors import InputTooLarge, SchemaViolation
from services.backbone.identifiers import subject_identifier
from services.backbone.keyring import Keyring
from services.backbone.publisher import EventBuilder
from services.backbone.schemas import SchemaRegistry
from services.outbox import store as outbox_store
from services.outbox.store import IdempotencyKeyReused, OutboxStore
from services.personindex.store import PersonIndex
from tests.spans import spans
from tests.unit.factories import ATTENDANCE, ED, attendance_data

__all__ = ["spans"]  # a fixture
TOPIC = "unit.source.nhs-riverside-ed"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def intake(tmp_path: Path, keyring: Keyring, schemas: SchemaRegistry) -> Intake:
    routing = keyring.require_routing()
    outbox = OutboxStore(f"sqlite:///{tmp_path / 'outbox.db'}")
    index = PersonIndex(f"sqlite:///{tmp_path / 'index.db'}", routing)
    outbox.create_schema()
    index.create_schema()
    woken: list[int] = []
    made = Intake(
        agency=ED,
        is_authority=False,
        source_topic=TOPIC,
        builder=EventBuilder(agency_id=ED, schemas=schemas, routing=routing),
        outbox=outbox,
        index=index,
        published=lambda: woken.append(1),
    )
    made.woken = woken  # type: ignore[attr-defined]
    return made


def attendance(child: scenario.Child, native_id: str) -> Outgoing:
    return Outgoing(ATTENDANCE, attendance_data(child), native_id)


def sent(intake: Intake) -> list[envelope.CloudEvent]:
    """What the outbox holds to publish, decoded as the processor will decode it."""
    return [envelope.decode(p.key, p.value, p.headers) for p in intake.outbox.pending(TOPIC, 100)]


def run(intake: Intake, submission: Submission) -> Any:
    return asyncio.run(submit(intake, submission))


def test_every_event_is_accepted_in_order_and_the_relay_is_woken(intake: Intake) -> None:
    events = [attendance(scenario.ON_PLAN, "enc-1"), attendance(scenario.NOT_ON_PLAN, "enc-2")]
    accepted = run(intake, Submission(events=events, key_id="k1", fingerprint="f1"))

    assert not accepted.replayed
    assert [e["type"] for e in accepted.response["events"]] == [ATTENDANCE, ATTENDANCE]
    ids = [e["id"] for e in accepted.response["events"]]
    assert ids == [intake.builder.event_id(ATTENDANCE, n) for n in ("enc-1", "enc-2")]
    stored = sent(intake)
    assert [e.id for e in stored] == ids
    # The person index named each child, as the processor will key it.
    assert [e.data["subject"]["indexed_as"] for e in stored] == [
        subject_identifier(nhs_number=scenario.ON_PLAN.nhs_number),
        subject_identifier(nhs_number=scenario.NOT_ON_PLAN.nhs_number),
    ]
    assert intake.woken == [1]  # type: ignore[attr-defined]


def test_one_bad_event_refuses_the_request_and_nothing_is_stored_or_linked(
    intake: Intake,
) -> None:
    bad = attendance(scenario.NOT_ON_PLAN, "enc-2")
    del bad.data["attendance"]["arrival_time"]
    events = [attendance(scenario.ON_PLAN, "enc-1"), bad]
    with pytest.raises(SchemaViolation, match="arrival_time"):
        run(intake, Submission(events=events, key_id="k1", fingerprint="f1"))
    assert sent(intake) == []
    assert intake.index.identity_of(f"nhs:{scenario.ON_PLAN.nhs_number}") is None


def test_a_retry_gets_the_first_answer_and_stores_nothing_more(intake: Intake) -> None:
    first = Submission(
        events=[attendance(scenario.ON_PLAN, "enc-1")],
        key_id="k1",
        fingerprint="same-request",
        idempotency_key="req-1",
    )
    accepted = run(intake, first)
    again = run(intake, first)
    assert again.replayed and again.submission_id == accepted.submission_id
    assert again.response == accepted.response
    assert len(sent(intake)) == 1


def test_a_key_used_for_another_request_is_refused(intake: Intake) -> None:
    events = [attendance(scenario.ON_PLAN, "enc-1")]
    run(intake, Submission(events=events, key_id="k1", fingerprint="a", idempotency_key="r"))
    with pytest.raises(IdempotencyKeyReused):
        run(intake, Submission(events=events, key_id="k1", fingerprint="b", idempotency_key="r"))
    assert len(sent(intake)) == 1


def test_an_event_too_large_for_kafka_is_refused_whole(intake: Intake) -> None:
    big = attendance(scenario.ON_PLAN, "enc-1")
    big.data["attendance"]["clinical_notes"] = "x" * 950_000  # free text: the usual cause
    with pytest.raises(InputTooLarge) as refused:
        run(intake, Submission(events=[big], key_id="k1", fingerprint="f"))
    assert refused.value.rule == "event.too_large"
    assert sent(intake) == []


def test_an_override_travels_with_every_event(intake: Intake) -> None:
    why = Override(justification="asking the parent would put the child at risk", role="DSL")
    events = [attendance(scenario.ON_PLAN, "enc-1"), attendance(scenario.NOT_ON_PLAN, "enc-2")]
    run(intake, Submission(events=events, key_id="k1", fingerprint="f", override=why))
    assert [e.data["safeguarding_override"] for e in sent(intake)] == [
        {"justification": why.justification, "role": "DSL"}
    ] * 2


def test_the_use_case_loads_no_web_framework() -> None:
    program = (
        "import sys, services.agency.submission; "
        "print(','.join(m for m in ('fastapi', 'starlette') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == ""


def test_submissions_stored_together_answer_each_alone(intake: Intake) -> None:
    """Requests arriving together are committed together (group commit), and each still
    gets its own answer: the twin of a keyed request replays it, a request too large is
    refused alone, the others are accepted."""
    big = attendance(scenario.ON_PLAN, "enc-big")
    big.data["attendance"]["clinical_notes"] = "x" * 950_000

    def keyed(fingerprint: str, child: scenario.Child = scenario.ON_PLAN) -> Submission:
        events = [attendance(child, "enc-k")]
        return Submission(events, key_id="k1", fingerprint=fingerprint, idempotency_key="r")

    async def together() -> Any:
        return await asyncio.gather(
            submit(intake, keyed("same")),
            submit(intake, keyed("same")),
            submit(intake, Submission([big], key_id="k1", fingerprint="big")),
            submit(intake, Submission([attendance(scenario.NOT_ON_PLAN, "enc-n")], "k1", "n")),
            submit(intake, keyed("other", scenario.THIRD)),  # the key, for another request
            return_exceptions=True,
        )

    first, twin, too_large, other, reused = asyncio.run(together())
    assert not first.replayed and twin.replayed
    assert twin.submission_id == first.submission_id
    assert isinstance(too_large, InputTooLarge)
    assert not other.replayed
    assert isinstance(reused, IdempotencyKeyReused)
    # Refused as a reused key, it linked nobody: its child is unknown to the index.
    assert intake.index.identity_of(f"nhs:{scenario.THIRD.nhs_number}") is None
    assert sorted(e.id for e in sent(intake)) == sorted(
        intake.builder.event_id(ATTENDANCE, n) for n in ("enc-k", "enc-n")
    )


def test_each_requests_trace_leads_to_the_group_commit_that_stored_it(
    intake: Intake, spans: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("test")

    async def request(native_id: str) -> trace.SpanContext:
        with tracer.start_as_current_span(f"POST {native_id}") as server:
            events = [attendance(scenario.ON_PLAN, native_id)]
            await submit(intake, Submission(events, key_id="k1", fingerprint=native_id))
            return server.get_span_context()

    async def together() -> list[trace.SpanContext]:
        return list(await asyncio.gather(request("enc-1"), request("enc-2")))

    requests = asyncio.run(together())
    (batch,) = [s for s in spans.get_finished_spans() if s.name == "agency.store_batch"]
    assert {link.context.span_id for link in batch.links} == {r.span_id for r in requests}
    assert dict(batch.attributes or {}) == {"infoshare.batch.submissions": 2}


def refuse_fingerprint(monkeypatch: pytest.MonkeyPatch, fingerprint: str) -> None:
    """The outbox's database refuses any group holding the submission of ``fingerprint``
    (PostgreSQL's DataError, say); each is then tried alone."""
    insert = outbox_store._insert_all

    def refusing(conn: Any, group: Any, now: Any) -> Any:
        if any(sub.fingerprint == fingerprint for sub, _ in group):
            raise OperationalError("INSERT", None, Exception("refused"))
        return insert(conn, group, now)

    monkeypatch.setattr(outbox_store, "_insert_all", refusing)


def test_a_copy_of_an_amendment_refused_in_its_batch_is_not_taken_as_unchanged(
    intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two requests of one batch amend a record alike, and the database refuses the first.
    The second is no copy of a version stored: it is asked to send again, and sent again it
    is the record's version 2, stored as such (not an event the store's versions deny)."""
    run(intake, Submission([attendance(scenario.ON_PLAN, "enc-1")], "k1", "v1"))
    data = attendance_data(scenario.ON_PLAN)
    data["attendance"]["presenting_complaint_category"] = "other"
    amended = [Outgoing(ATTENDANCE, data, "enc-1")]
    refuse_fingerprint(monkeypatch, "refused")

    async def together() -> Any:
        return await asyncio.gather(
            submit(intake, Submission(amended, "k1", "refused")),
            submit(intake, Submission(amended, "k1", "copy")),
            return_exceptions=True,
        )

    refused, copy = asyncio.run(together())
    assert isinstance(refused, OperationalError)
    assert isinstance(copy, outbox_store.AmendedMeanwhile)
    first = intake.builder.event_id(ATTENDANCE, "enc-1")
    assert intake.outbox.versions(ED, [first])[first].version == 1
    again = run(intake, Submission(amended, "k1", "again"))
    (event,) = again.response["events"]
    assert (event["version"], event["supersedes"]) == (2, first)
    assert intake.outbox.versions(ED, [first])[first].version == 2


def test_a_submission_the_database_refuses_fails_alone_in_its_batch(
    intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value the database refuses (PostgreSQL's DataError, say) fails its own request, not
    the others committed with it."""
    refuse_fingerprint(monkeypatch, "refused")

    async def together() -> Any:
        return await asyncio.gather(
            *(
                submit(intake, Submission([attendance(child, f"enc-{n}")], "k1", fingerprint))
                for n, (child, fingerprint) in enumerate(
                    [
                        (scenario.ON_PLAN, "a"),
                        (scenario.NOT_ON_PLAN, "refused"),
                        (scenario.THIRD, "c"),
                    ]
                )
            ),
            return_exceptions=True,
        )

    first, refused, third = asyncio.run(together())
    assert isinstance(refused, OperationalError)
    assert not first.replayed and not third.replayed
    assert sorted(e.id for e in sent(intake)) == sorted(
        intake.builder.event_id(ATTENDANCE, n) for n in ("enc-0", "enc-2")
    )
