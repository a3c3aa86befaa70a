"""The audit trail verified by the audit service itself, on a real database: the verifier
that `infoshare audit verify` uses finds an intact trail intact and names the record edited
by hand, without mistaking records sealed while it reads for tampering; the service runs it
on a schedule, shows the verdict at GET /metrics for an alert to fire on, and logs the
failure by sequence number and check, never by what a record says."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy

from services.audit.anchoring import file_anchor
from services.audit.app import AuditSettings, create_app
from services.audit.chain import Stored
from services.audit.sealing import sealing_from
from services.audit.store import AuditStore
from services.audit.verification import TrailVerdict, verify_trail
from services.audit.verify_schedule import verify_every
from services.backbone import kafka
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import Keyring
from services.backbone.topics import Topics, TopicSpec
from tests.integration.kafka_helpers import eventually

REASON = "the protocol allows it (reason-text-7f3a)"
ACTOR = "actor-7f3a"


def _record(offset: int, **fields: Any) -> AuditRecord:
    return AuditRecord.about(
        topic="source.x",
        partition=0,
        offset=offset,
        recipient="la-northshire",
        protocol="p@1",
        recorded_at=datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
        action="disclose",
        decision=AuditOutcome.SHARED,
        reason_code="shared.protocol_allows",
        reason=REASON,
        actor=ACTOR,
        source_agency="la-northshire",
        **{"subject_key": f"child-{offset}", **fields},
    )


def _store(url: str, checkpoints: Path, keyring: Keyring, *, schema: bool = True) -> AuditStore:
    store = AuditStore(url, sealing_from(keyring, checkpoints))
    if schema:
        store.create_schema()
    return store


def _verify(store: AuditStore, **options: Any) -> TrailVerdict:
    file = options.pop("checkpoint_file", store.sealing.checkpoint_file)
    return verify_trail(
        store.engine,
        chain_keys=store.sealing.chain_keys(),
        public_keys=store.sealing.public_keys(),
        anchors=lambda: [file_anchor(file)],
        **{"settle_s": 0.0, **options},
    )


def _edit_record_2(engine: sqlalchemy.Engine) -> None:
    with engine.begin() as db:  # by hand, as anyone with write access to the database could
        db.execute(sqlalchemy.text("UPDATE audit_entry SET decision = 'withheld' WHERE seq = 2"))


def test_the_verifier_proves_a_trail_then_names_the_record_edited(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    store = _store(database_url, tmp_path / "cp.jsonl", keyring)
    store.add_batch([_record(i, subject_aliases=[f"upn-{i}"]) for i in range(1, 7)])

    intact = _verify(store)
    assert intact.ok and intact.problem is None and intact.failed is None
    assert (intact.records, intact.checkpoints) == (6, 1)  # signed with its batch
    assert intact.anchored == 6
    unanchored = _verify(store, checkpoint_file=tmp_path / "elsewhere.jsonl")
    assert unanchored.failed == "anchor" and "is not there (deleted?)" in str(unanchored.problem)

    _edit_record_2(store.engine)
    tampered = _verify(store)
    assert not tampered.ok and tampered.failed == "chain" and tampered.records == 1
    assert tampered.problem == "record 2: edited: its content does not give its stored hash"


def test_records_sealed_while_the_verifier_reads_are_not_taken_for_tampering(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    """The service verifies while it ingests: a record (and its alias link) stored after
    the walk but before the alias index is read is the next verification's to walk."""
    store = _store(database_url, tmp_path / "cp.jsonl", keyring)
    store.add_batch([_record(1, subject_aliases=["upn-1"])])

    def and_then_one_more(records: Iterable[Stored]) -> Iterator[Stored]:
        yield from records
        store.add_batch([_record(2, subject_aliases=["upn-2"])])

    verdict = _verify(store, counted=and_then_one_more)
    assert verdict.ok, verdict.problem
    assert verdict.records == 1
    assert _verify(store).records == 2


async def test_a_trail_that_cannot_be_read_is_logged_and_no_verdict_is_reported(
    tmp_path: Path, keyring: Keyring, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="services.audit.verification")
    store = _store(f"sqlite:///{tmp_path / 'no-tables.db'}", tmp_path / "cp", keyring, schema=False)
    reports: list[bool] = []
    stop = asyncio.Event()
    task = asyncio.create_task(verify_every(0.05, store, stop=stop, report=reports.append))

    async def failed_twice() -> bool:  # the first failure did not end the task
        return len([r for r in caplog.records if "not verified" in r.getMessage()]) >= 2

    try:
        await eventually("two verifications that could not read the trail", failed_twice)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert reports == []
    message = caplog.records[0].getMessage()
    assert message == "audit trail not verified: cannot read it (OperationalError)"


async def test_stopping_does_not_wait_for_the_next_verification(
    tmp_path: Path, keyring: Keyring
) -> None:
    store = _store(f"sqlite:///{tmp_path / 'audit.db'}", tmp_path / "cp.jsonl", keyring)
    store.add_batch([_record(1)])
    reports: list[bool] = []
    stop = asyncio.Event()
    task = asyncio.create_task(verify_every(3600, store, stop=stop, report=reports.append))

    async def verified() -> bool:
        return reports == [True]

    await eventually("the verification right after start", verified)
    stop.set()
    await asyncio.wait_for(task, 5)


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


@pytest.mark.kafka
async def test_the_service_verifies_its_trail_and_its_gauge_turns_to_0_when_tampered(
    kafka_access: KafkaAccess,
    namespace: str,
    tmp_path: Path,
    keyring: Keyring,
    keyring_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="services.audit.verification")
    url, checkpoints = f"sqlite:///{tmp_path / 'audit.db'}", tmp_path / "cp.jsonl"
    topics = Topics(namespace=namespace)
    await kafka.ensure_topics(
        kafka_access,
        [
            TopicSpec(topics.audit, 1),
            TopicSpec(topics.audit_activity, 1),
            TopicSpec(topics.audit_checkpoints, 1, retention_ms=-1),
            TopicSpec(topics.dlq("audit"), 1),
        ],
    )
    settings = AuditSettings(
        keyring_file=keyring_path,
        audit_database_url=url,
        audit_checkpoint_file=checkpoints,
        kafka_bootstrap=kafka_access.bootstrap,
        topic_namespace=namespace,
        audit_verify_every_s=0.2,
        audit_verify_full_every_s=0,  # an old record edited: found by a full walk
    )
    app = create_app(settings)
    records = [_record(i) for i in range(1, 5)]
    _store(url, checkpoints, keyring).add_batch(records)  # as the ingester would store them

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as api,
    ):

        async def gauge_is(value: float) -> bool:
            text = (await api.get("/metrics")).text
            return _metric(text, "infoshare_audit_chain_verified") == value

        await eventually("the trail verified", lambda: gauge_is(1.0))
        text = (await api.get("/metrics")).text
        assert _metric(text, "infoshare_audit_verification_failures_total") in (None, 0.0)

        _edit_record_2(sqlalchemy.create_engine(url))
        await eventually("the tampering found", lambda: gauge_is(0.0))
        text = (await api.get("/metrics")).text
        assert (_metric(text, "infoshare_audit_verification_failures_total") or 0) >= 1

    alerts = [
        r for r in caplog.records if r.getMessage().startswith("ALERT audit trail verification")
    ]
    assert alerts and all(r.levelno == logging.ERROR for r in alerts)
    line = alerts[0].getMessage()
    assert line == (
        "ALERT audit trail verification failed: "
        "record 2: edited: its content does not give its stored hash"
    )
    said = [REASON, ACTOR, "withheld", *(r.audit_id for r in records), "child-2"]
    assert not [value for value in said if value in caplog.text]


def test_a_trail_verifies_across_rotations_of_its_chain_and_signing_keys(
    database_url: str, tmp_path: Path
) -> None:
    """Records chained, and checkpoints signed, under keys since rotated still verify with
    the older keys kept; without them the older half does not, and an edit is still found."""
    from sqlmodel import Session

    from services.audit.chain import checkpoint_for
    from services.audit.models import AuditCheckpoint
    from services.audit.records import stored_records
    from services.audit.rotation import record_rotation
    from services.audit.sealing import stored_checkpoints
    from services.backbone.key_rotation import rotate_key
    from services.backbone.keyring import generate_keyring, load_keyring

    path = generate_keyring(tmp_path / "keyring.yaml", ["la-northshire"])
    before = load_keyring(path)
    store = _store(database_url, tmp_path / "cp.jsonl", before)
    store.add_batch([_record(i) for i in range(1, 5)])
    store.engine.dispose()
    rotate_key(path, "audit_chain")
    rotate_key(path, "audit_signing")
    after = load_keyring(path)
    store = _store(database_url, tmp_path / "cp.jsonl", after)
    # As the service does at start: the new key is said in the trail before it signs.
    assert record_rotation(store) == before.require_audit_signing()[0]
    assert record_rotation(store) is None  # once
    store.add_batch([_record(i) for i in range(5, 9)])

    verdict = _verify(store)
    assert verdict.ok, verdict.problem
    assert verdict.records == 9  # the rotation is record 5
    signers = {c.key_id for c in stored_checkpoints(store.engine)}
    assert signers == {before.require_audit_signing()[0], after.require_audit_signing()[0]}

    # A checkpoint under the new key dated before its rotation record: a forgery.
    new_id, new_key = after.require_audit_signing()
    with Session(store.engine) as session:
        leaves = [bytes.fromhex(r.entry_hash) for r in stored_records(store.engine)][:4]
        head = bytes.fromhex(next(r for r in stored_records(store.engine) if r.seq == 4).chain_hash)
        cp = checkpoint_for(leaves, head, now=datetime.now(UTC), key=new_key, key_id=new_id)
        session.add(AuditCheckpoint(**cp.to_json()))
        session.commit()
    backdated = _verify(store)
    assert "which the trail brought in only at record 5" in str(backdated.problem)
    with store.engine.begin() as db:
        db.execute(
            sqlalchemy.text("DELETE FROM audit_checkpoint WHERE tree_size = 4 AND key_id = :k"),
            {"k": new_id},
        )

    active_only = verify_trail(
        store.engine,
        chain_keys=[after.require_audit_chain().secret],
        public_keys={
            after.require_audit_signing()[0]: after.require_audit_signing()[1].public_key()
        },
        anchors=lambda: [file_anchor(tmp_path / "cp.jsonl")],
    )
    assert not active_only.ok and "signed by an unknown key" in str(active_only.problem)

    _edit_record_2(store.engine)
    tampered = _verify(store)
    assert tampered.problem == "record 2: edited: its content does not give its stored hash"


def test_a_child_is_found_under_every_audit_subject_key_after_a_rotation(
    database_url: str, tmp_path: Path
) -> None:
    """Records made before the audit subject key was rotated are keyed under the older
    key; the processor keys the child under the older keys too, as aliases. So a search by
    NHS number or UPN finds both generations; a UPN linked to one child before the rotation
    and to another after it is refused, never merged."""
    from fastapi import HTTPException

    from consent.processor.records import AuditSubject
    from services.audit.child import ChildQuery, find_child
    from services.backbone.identifiers import subject_identifier, upn_identifier
    from services.backbone.key_rotation import rotate_key
    from services.backbone.keyed import keyed_id
    from services.backbone.keyring import generate_keyring, load_keyring

    path = generate_keyring(tmp_path / "keyring.yaml", ["la-northshire"])
    old = load_keyring(path).require_audit_subject()
    rotate_key(path, "audit_subject")
    ring = load_keyring(path)
    new = ring.require_audit_subject()
    upn = "A123456789012"

    def about(offset: int, nhs: str, *, before: bool) -> AuditRecord:
        """A decision keyed as the processor keys it, before or after the rotation."""
        child = subject_identifier(nhs_number=nhs)
        keyed = (
            AuditSubject.of(old, child, [upn_identifier(upn)])
            if before
            else AuditSubject.of(new, child, [upn_identifier(upn)], [old])
        )
        return _record(offset, **keyed.fields())

    def key_of(key: Any, nhs: str) -> str:
        return keyed_id(key.secret, "audit-subject", subject_identifier(nhs_number=nhs))

    store = _store(database_url, tmp_path / "cp.jsonl", ring)
    store.add_batch([about(1, "9434765919", before=True), about(2, "9434765919", before=False)])
    both = sorted(key_of(k, "9434765919") for k in (old, new))
    for query in (ChildQuery(nhs_number="9434765919"), ChildQuery(upn=upn)):
        child = find_child(query, store, ring.keys_of("audit_subject"))
        assert both == [k for k in child.subject_keys if k in both]
        assert child.key == key_of(new, "9434765919")
        assert [r.offset_in for r in store.by_subject(child.subject_keys, limit=10)] == [1, 2]
    only_new = find_child(ChildQuery(nhs_number="9434765919"), store, [new])
    assert [r.offset_in for r in store.by_subject(only_new.subject_keys, limit=10)] == [2]

    # The UPN on one child's record before the rotation and another's after: refused.
    mixed = _store(f"{database_url}", tmp_path / "cp2.jsonl", ring)
    with mixed.engine.begin() as db:
        db.execute(sqlalchemy.text("DELETE FROM audit_subject_alias"))
        db.execute(sqlalchemy.text("DELETE FROM audit_checkpoint"))
        db.execute(sqlalchemy.text("DELETE FROM audit_entry"))
    mixed.add_batch([about(1, "9434765919", before=True), about(3, "9999999468", before=False)])
    with pytest.raises(HTTPException) as refused:
        find_child(ChildQuery(upn=upn), mixed, ring.keys_of("audit_subject"))
    assert refused.value.status_code == 409
    child = find_child(ChildQuery(nhs_number="9999999468"), mixed, ring.keys_of("audit_subject"))
    assert [r.offset_in for r in mixed.by_subject(child.subject_keys, limit=10)] == [3]


async def test_the_services_checks_after_the_first_walk_only_what_was_sealed_since(
    database_url: str, tmp_path: Path, keyring: Keyring, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="services.audit.verification")
    store = _store(database_url, tmp_path / "cp.jsonl", keyring)
    store.add_batch([_record(i) for i in range(1, 5)])
    stop, reports = asyncio.Event(), list[bool]()
    task = asyncio.create_task(
        verify_every(0.05, store, stop=stop, report=reports.append, full_every_s=3600)
    )
    await eventually("the first check", lambda: _async(len(reports) >= 1))
    store.add_batch([_record(i) for i in range(5, 8)])
    await eventually(
        "a check of the records sealed since",
        lambda: _async("7 record(s) (3 walked)" in caplog.text),
    )
    stop.set()
    await task
    assert all(reports) and "4 record(s) (4 walked)" in caplog.text


async def _async(value: bool) -> bool:
    return value
