"""The tamper matrix, on SQLite and PostgreSQL: ``infoshare audit verify``, run as an outside
verifier with only the trail's public keys, its checkpoint file and the anchor topic on a
real broker, passes the intact trail and, for each way someone who can write to the store
(and the file) could alter it, exits 1 naming the first bad record or the anchor that shows
it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from typer.testing import CliRunner

from deploy.cli.main import app
from services.audit import anchoring, walking
from services.audit.models import OVERRIDE_CODE, OverrideReviewIn, ReviewOutcome
from services.audit.reviews import review_override
from services.audit.sealing import sealing_from
from services.audit.store import AuditStore
from services.backbone import kafka
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import generate_keyring, load_keyring
from services.backbone.topics import Topics, TopicSpec
from tests.audit_records import decision

pytestmark = pytest.mark.kafka


@dataclass
class Trail:
    store: AuditStore
    env: dict[str, str]
    file: Path
    keyring: Path
    public_keys: Path

    def verify(self, *extra: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["audit", "verify", *extra], env=self.env)
        return result.exit_code, " ".join(result.output.split())

    def sql(self, *statements: str) -> None:
        with self.store.engine.begin() as db:  # by hand, as anyone with write access could
            for statement in statements:
                db.execute(sqlalchemy.text(statement))


async def _anchor(store: AuditStore, access: KafkaAccess, topic: str) -> None:
    await kafka.ensure_topics(access, [TopicSpec(topic, 1, retention_ms=-1)])
    producer = kafka.producer(access)
    await producer.start()
    try:
        stop = asyncio.Event()
        stop.set()  # one pass: everything committed so far
        await anchoring.publish(store.engine, store.sealing, producer, topic, after=0, stop=stop)
    finally:
        await producer.stop()


@pytest.fixture
def trail(database_url: str, tmp_path: Path, kafka_access: KafkaAccess) -> Iterator[Trail]:
    """Twelve decisions in three batches and a review of one (a checkpoint signed with each
    batch), anchored in the file and on the topic; the verifier has the public keys only."""
    keyring_path = generate_keyring(tmp_path / "hub" / "keyring.yaml", ["la-northshire"])
    keyring = load_keyring(keyring_path)
    file = tmp_path / "checkpoints.jsonl"
    store = AuditStore(database_url, sealing_from(keyring, file))
    store.create_schema()
    records = [decision(keyring, i) for i in range(11)]
    records.insert(6, decision(keyring, 11, reason_code=OVERRIDE_CODE, reason="no time to ask"))
    for start in (0, 4, 8):
        store.add_batch(records[start : start + 4])
    # An IG officer's review of the override: record 13, sealed with its index row.
    review_override(
        store,
        records[6].audit_id,
        OverrideReviewIn(note="justified", outcome=ReviewOutcome.JUSTIFIED),
        reviewer="ig",
    )
    namespace = f"t{uuid.uuid4().hex[:8]}."
    asyncio.run(_anchor(store, kafka_access, Topics(namespace=namespace).audit_checkpoints))
    keys = tmp_path / "audit-keys.json"
    CliRunner().invoke(
        app,
        ["audit", "public-keys", "--out", str(keys)],
        env={"INFOSHARE_KEYRING_FILE": str(keyring_path)},
    )
    env = {
        **kafka_access.as_env(),
        "INFOSHARE_AUDIT_DATABASE_URL": database_url,
        "INFOSHARE_AUDIT_CHECKPOINT_FILE": str(file),
        "INFOSHARE_TOPIC_NAMESPACE": namespace,
        "INFOSHARE_KEYRING_FILE": str(tmp_path / "no-keyring-here.yaml"),
    }
    yield Trail(store, env, file, keyring_path, keys)
    store.engine.dispose()


def _verify(trail: Trail, *extra: str) -> tuple[int, str]:
    return trail.verify("--public-keys", str(trail.public_keys), *extra)


def test_an_outside_verifier_with_public_keys_only_passes_the_intact_trail(trail: Trail) -> None:
    code, said = _verify(trail)
    assert code == 0, said
    assert "intact: 13 record(s)" in said and "anchored outside the store up to 13" in said
    assert "chain links not checked (no keyring" in said


def _swap_5_and_6(trail: Trail) -> None:
    trail.sql(
        "UPDATE audit_entry SET seq = -5 WHERE seq = 5",
        "UPDATE audit_entry SET seq = 5 WHERE seq = 6",
        "UPDATE audit_entry SET seq = 6 WHERE seq = -5",
    )


def _copy_5_to_the_end(trail: Trail) -> None:
    """A copy of record 5 as record 14, its hash recomputed as anyone could (SHA-256)."""
    from services.audit.chain import canonical, leaf_hash
    from services.audit.models import CONTENT_FIELDS, AuditEntry

    table = AuditEntry.__table__  # type: ignore[attr-defined]
    with trail.store.engine.begin() as db:
        row = db.execute(sqlalchemy.select(table).where(table.c.seq == 5)).mappings().one()
        copy = {k: v for k, v in row.items() if k != "id"}
        copy.update(seq=14, audit_id=str(uuid.uuid4()))
        content = {k: copy.get(k) for k in CONTENT_FIELDS}
        copy["entry_hash"] = leaf_hash(canonical(14, content)).hex()
        db.execute(sqlalchemy.insert(table), copy)


TAMPERING: dict[str, tuple[Any, str]] = {
    "edit a field": (
        lambda t: t.sql("UPDATE audit_entry SET decision = 'withheld' WHERE seq = 5"),
        "TAMPERED: record 5: edited",
    ),
    "delete a record": (
        lambda t: t.sql("DELETE FROM audit_entry WHERE seq = 5"),
        "TAMPERED: record 5: missing",
    ),
    "swap two records": (_swap_5_and_6, "TAMPERED: record 5: edited"),
    "insert a copy": (_copy_5_to_the_end, "no anchor covers the store's head: records 14..14"),
    "truncate the tail before the last checkpoint": (
        lambda t: t.sql("DELETE FROM audit_entry WHERE seq > 10"),
        "TAMPERED: record 11: truncated",
    ),
    "truncate the tail and the store's checkpoint over it": (
        lambda t: t.sql(
            "DELETE FROM audit_entry WHERE seq > 8",
            "DELETE FROM audit_checkpoint WHERE tree_size > 8",
        ),
        "the checkpoint of 12 records signed at",
    ),
    "delete the store's checkpoints": (
        lambda t: t.sql("DELETE FROM audit_checkpoint"),
        "the checkpoint of 4 records signed at",
    ),
    "delete the checkpoint file": (
        lambda t: t.file.unlink(),
        "the checkpoint file",
    ),
    "rewind the checkpoint file": (
        lambda t: t.file.write_text("\n".join(t.file.read_text().splitlines()[:2]) + "\n"),
        "covers records up to 8 only, the store holds 13",
    ),
    "edit a review in place": (
        lambda t: t.sql("UPDATE override_review SET note = 'not justified'"),
        "the override review index (override_review) differs from the sealed reviews",
    ),
    "change a review's outcome": (
        lambda t: t.sql("UPDATE override_review SET outcome = 'not_justified'"),
        "the override review index (override_review) differs from the sealed reviews",
    ),
    "remove a review": (
        lambda t: t.sql("DELETE FROM override_review"),
        "0 review(s) there that the chain does not hold, 1 sealed review(s) missing",
    ),
}


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("case", list(TAMPERING))
def test_each_tampering_exits_1_naming_the_record_or_the_anchor(
    trail: Trail, case: str, workers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In one process, and with two workers checking ranges of 4 records (the thirteen
    records split at 4, 8 and 12, the review among them)."""
    monkeypatch.setattr(walking, "RANGE", 4)
    monkeypatch.setattr(walking, "APART_FROM", 8)
    tamper, named = TAMPERING[case]
    tamper(trail)
    code, said = _verify(trail, "--workers", workers)
    assert code == 1, said
    assert named in said, said


def test_an_intact_trail_checked_in_ranges_by_two_workers_passes(
    trail: Trail, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(walking, "RANGE", 4)
    monkeypatch.setattr(walking, "APART_FROM", 8)
    split: list[int] = []
    apart = walking._apart

    def counted(*args: Any) -> walking.Walk:
        split.append(args[-2])  # the workers
        return apart(*args)

    monkeypatch.setattr(walking, "_apart", counted)
    code, said = _verify(trail, "--workers", "2")
    assert code == 0 and "intact: 13 record(s)" in said, said
    assert split == [2]


def test_anchors_that_disagree_are_named(trail: Trail, tmp_path: Path) -> None:
    """Someone with the store and the signing key rewrites history and signs it again: the
    file they also rewrote agrees with the store, the topic does not."""
    keyring = load_keyring(trail.keyring)
    rewritten = tmp_path / "rewritten.jsonl"
    other = AuditStore(f"sqlite:///{tmp_path / 'rewritten.db'}", sealing_from(keyring, rewritten))
    other.create_schema()
    other.add_batch([decision(keyring, i, reason="rewritten") for i in range(12)])
    lines = [json.loads(line) for line in rewritten.read_text().splitlines()]
    assert lines  # one signed head over twelve rewritten records
    trail.file.write_text(trail.file.read_text() + rewritten.read_text())
    code, said = _verify(trail)
    assert code == 1 and "checkpoints disagree: two signed heads of 12 records" in said, said
    other.engine.dispose()
