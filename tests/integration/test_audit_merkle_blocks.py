"""The Merkle block index on a real store, SQLite and PostgreSQL: a trail of several blocks,
signed in batches that do not line up with them. Its proofs are RFC 9162's (checked against
the plain hashlib reference) and read the block index rather than every record. A block row
deleted by hand is computed from the records; one doctored by hand is refused by ``prove``
and named by ``verify``. ``prove-growth``'s consistency proof checks offline with the public
keys alone, and an altered one does not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlmodel import Session
from typer.testing import CliRunner

from deploy.cli.main import app
from services.audit import migrate
from services.audit.anchoring import file_anchor
from services.audit.blocks import BLOCK, StoreRoots
from services.audit.models import AuditEntry
from services.audit.proofs import inclusion_path
from services.audit.proving import ProofError, prove
from services.audit.sealing import seal_new, sealing_from, stored_checkpoints
from services.audit.store import AuditStore
from services.audit.verification import verify_trail
from services.backbone.keyring import generate_keyring, load_keyring
from tests.audit_records import decision
from tests.rfc9162 import mth, subproof
from tests.rfc9162 import path as ref_path

RECORDS = 2 * BLOCK + 500  # two whole blocks and part of a third
BATCH = 700  # signed at 700, 1,400, 2,100 and 2,548 records: across the blocks' edges


class Trail:
    def __init__(self, database_url: str, tmp_path: Path) -> None:
        keyring_path = generate_keyring(tmp_path / "keyring.yaml", ["la-northshire"])
        self.keyring = load_keyring(keyring_path)
        self.checkpoint_file = tmp_path / "cp.jsonl"
        self.store = AuditStore(database_url, sealing_from(self.keyring, self.checkpoint_file))
        self.store.create_schema()
        self.records = [decision(self.keyring, i) for i in range(RECORDS)]
        for start in range(0, RECORDS, BATCH):
            self.store.add_batch(self.records[start : start + BATCH])
        self.env = {
            "INFOSHARE_KEYRING_FILE": str(keyring_path),
            "INFOSHARE_AUDIT_DATABASE_URL": database_url,
            "INFOSHARE_AUDIT_CHECKPOINT_FILE": str(tmp_path / "cp.jsonl"),
        }
        with self.store.engine.connect() as db:
            self.leaves = [
                bytes.fromhex(h)
                for (h,) in db.execute(
                    sqlalchemy.text("SELECT entry_hash FROM audit_entry ORDER BY seq")
                )
            ]

    def blocks(self) -> dict[int, str]:
        with self.store.engine.connect() as db:
            rows = db.execute(sqlalchemy.text("SELECT block, root FROM audit_merkle_block"))
            return {int(b): str(r) for b, r in rows}

    def sql(self, statement: str) -> None:
        with self.store.engine.begin() as db:  # by hand, as anyone with write access could
            db.execute(sqlalchemy.text(statement))

    def cli(self, *args: str) -> Any:
        return CliRunner().invoke(app, ["audit", *args], env=self.env)

    def verify(self) -> Any:
        return verify_trail(
            self.store.engine,
            public_keys=self.store.sealing.public_keys(),
            anchors=lambda: [file_anchor(self.checkpoint_file)],
            settle_s=0,
        )


@pytest.fixture
def trail(database_url: str, tmp_path: Path) -> Trail:
    return Trail(database_url, tmp_path)


def test_each_block_is_indexed_in_the_batch_that_completes_it(trail: Trail) -> None:
    assert [c.tree_size for c in stored_checkpoints(trail.store.engine)] == [
        700,
        1400,
        2100,
        2548,
    ]
    assert trail.blocks() == {
        0: mth(trail.leaves[:BLOCK]).hex(),
        1: mth(trail.leaves[BLOCK : 2 * BLOCK]).hex(),
    }


@pytest.mark.parametrize("size", [1, 700, 1023, 1024, 1025, 2047, 2048, 2049, RECORDS])
def test_any_range_head_from_the_index_is_the_rfcs(trail: Trail, size: int) -> None:
    with Session(trail.store.engine) as session:
        roots = StoreRoots(session, size)
        assert roots(0, size) == mth(trail.leaves[:size])
        assert roots.records_read == size % BLOCK  # the blocks' heads, and the part block
        if size > 10:
            assert roots(3, size - 2) == mth(trail.leaves[3 : size - 2])  # off the boundaries


@pytest.mark.parametrize("seq", [1, 1024, 1025, 2048, 2049, RECORDS])
def test_a_proof_reads_the_index_not_every_record(trail: Trail, seq: int) -> None:
    doc = prove(trail.store.engine, trail.records[seq - 1].audit_id, _known(trail))
    assert doc["checkpoint"]["tree_size"] == RECORDS
    assert [bytes.fromhex(p) for p in doc["path"]] == ref_path(seq - 1, trail.leaves)
    with Session(trail.store.engine) as session:
        roots = StoreRoots(session, RECORDS)
        inclusion_path(seq - 1, RECORDS, roots)
        # The record's own block and the part at the end: never every record.
        assert roots.records_read <= BLOCK + RECORDS % BLOCK


def test_a_missing_block_is_computed_and_a_doctored_one_refused_and_named(trail: Trail) -> None:
    trail.sql("DELETE FROM audit_merkle_block WHERE block = 0")
    doc = prove(trail.store.engine, trail.records[5].audit_id, _known(trail))
    assert [bytes.fromhex(p) for p in doc["path"]] == ref_path(5, trail.leaves)
    assert trail.verify().ok  # derived, and nothing a proof needs is lost

    # Its first digit changed (replacing every 0 changed nothing when the root had none).
    trail.sql(
        "UPDATE audit_merkle_block SET root = "
        "CASE WHEN substr(root, 1, 1) = '0' THEN '1' ELSE '0' END || substr(root, 2) "
        "WHERE block = 1"
    )
    with pytest.raises(ProofError, match="run `infoshare audit verify`"):
        prove(trail.store.engine, trail.records[5].audit_id, _known(trail))
    # Against a checkpoint signed before block 1 was complete, the proof is still made.
    assert prove(trail.store.engine, trail.records[5].audit_id, _known(trail), size=700)
    verdict = trail.verify()
    assert verdict.failed == "block_index"
    assert verdict.problem is not None and "block 1 (records 1025..2048)" in verdict.problem


def test_growth_between_two_checkpoints_is_proved_offline(trail: Trail, tmp_path: Path) -> None:
    keys, proof = tmp_path / "public-keys.json", tmp_path / "growth.json"
    assert trail.cli("public-keys", "--out", str(keys)).exit_code == 0
    made = trail.cli("prove-growth", "--from", "700", "--to", "2100", "--out", str(proof))
    assert made.exit_code == 0, made.output
    doc = json.loads(proof.read_text())
    assert [bytes.fromhex(p) for p in doc["path"]] == subproof(700, trail.leaves[:2100], True)

    checked = CliRunner().invoke(
        app,
        ["audit", "check-proof", str(proof), "--public-keys", str(keys)],
        env={"PATH": "/usr/bin"},  # no keyring, no store: the proof and the keys alone
    )
    assert checked.exit_code == 0, checked.output
    assert "is the start of the trail of 2100" in " ".join(checked.output.split())

    bent = tmp_path / "bent.json"
    bent.write_text(json.dumps({**doc, "path": [doc["path"][1], doc["path"][0], *doc["path"][2:]]}))
    said = trail.cli("check-proof", str(bent), "--public-keys", str(keys))
    assert said.exit_code == 1 and "was rewritten between them" in " ".join(said.output.split())
    resized = tmp_path / "resized.json"
    resized.write_text(json.dumps({**doc, "old": {**doc["old"], "tree_size": 701}}))
    said = trail.cli("check-proof", str(resized), "--public-keys", str(keys))
    assert said.exit_code == 1 and "older checkpoint's signature does not verify" in said.output

    to_newest = trail.cli("prove-growth", "--from", "1400")
    assert to_newest.exit_code == 0 and '"tree_size": 2548' in to_newest.output
    assert trail.cli("prove-growth", "--from", "999").exit_code == 2
    assert trail.cli("prove-growth", "--from", "2100", "--to", "700").exit_code == 2


def test_the_upgrade_indexes_the_blocks_of_a_trail_stored_before(
    database_url: str, tmp_path: Path
) -> None:
    keyring = load_keyring(generate_keyring(tmp_path / "keyring.yaml", ["la-northshire"]))
    store = AuditStore(database_url, sealing_from(keyring, None))
    migrate.upgrade(store.engine, "0005")
    rows = [decision(keyring, i).model_dump() for i in range(BLOCK + 100)]
    with Session(store.engine) as session:  # as the revision before sealed them
        seal_new(session, rows, keyring.require_audit_chain().secret)
        session.execute(sqlalchemy.insert(AuditEntry.__table__), rows)  # type: ignore[attr-defined]
        session.commit()
    migrate.upgrade(store.engine)
    leaves = [bytes.fromhex(r["entry_hash"]) for r in rows]
    with store.engine.connect() as db:
        blocks = db.execute(sqlalchemy.text("SELECT block, root FROM audit_merkle_block")).all()
    assert [(int(b), str(r)) for b, r in blocks] == [(0, mth(leaves[:BLOCK]).hex())]


def _known(trail: Trail) -> list[Any]:
    return stored_checkpoints(trail.store.engine)
