"""`infoshare audit prove` and `check-proof` on a real store: a record's inclusion proof,
made from the store, is checked offline with only the public keys, and independently here
with plain hashlib and the public key; a changed record, another key or a store edited
after signing are each caught, by name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from typer.testing import CliRunner

from deploy.cli.main import app
from services.audit.sealing import sealing_from
from services.audit.store import AuditStore
from services.backbone.keyring import Keyring, generate_keyring, load_keyring
from tests.audit_records import decision


def _root_from_path(leaf: bytes, m: int, n: int, path: list[bytes]) -> bytes:
    """RFC 9162's tree, walked back from the leaf: written here apart from the product's."""
    if n == 1:
        assert not path
        return leaf
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        left = _root_from_path(leaf, m, k, path[:-1])
        return hashlib.sha256(b"\x01" + left + path[-1]).digest()
    right = _root_from_path(leaf, m - k, n - k, path[:-1])
    return hashlib.sha256(b"\x01" + path[-1] + right).digest()


@pytest.fixture
def trail(database_url: str, tmp_path: Path) -> tuple[AuditStore, dict[str, str], Keyring]:
    keyring_path = generate_keyring(tmp_path / "keyring.yaml", ["la-northshire"])
    keyring = load_keyring(keyring_path)
    store = AuditStore(
        database_url, sealing_from(keyring, tmp_path / "cp.jsonl", checkpoint_every=4)
    )
    store.create_schema()
    records = [decision(keyring, i) for i in range(11)]
    for start in (0, 4, 8):  # signed at 4 and 8 records, then at 11
        store.add_batch(records[start : start + 4])
    store.checkpoint()
    env = {
        "INFOSHARE_KEYRING_FILE": str(keyring_path),
        "INFOSHARE_AUDIT_DATABASE_URL": database_url,
        "INFOSHARE_AUDIT_CHECKPOINT_FILE": str(tmp_path / "cp.jsonl"),
    }
    ids = {f"r{i}": r.audit_id for i, r in enumerate(records)}
    return store, {**env, **ids}, keyring


def _cli(env: dict[str, str], *args: str) -> Any:
    settings = {k: v for k, v in env.items() if k.startswith("INFOSHARE_")}
    return CliRunner().invoke(app, ["audit", *args], env=settings)


def test_a_records_inclusion_is_proved_offline_with_only_public_keys(
    trail: tuple[AuditStore, dict[str, str], Keyring], tmp_path: Path
) -> None:
    _, env, keyring = trail
    keys = tmp_path / "public-keys.json"
    assert _cli(env, "public-keys", "--out", str(keys)).exit_code == 0
    assert keyring.require_audit_signing()[0] in keys.read_text()
    assert "secret" not in keys.read_text()
    proof = tmp_path / "proof.json"
    made = _cli(env, "prove", env["r4"], "--out", str(proof))
    assert made.exit_code == 0, made.output

    no_secrets = {"PATH": "/usr/bin"}  # no keyring, no store: the proof and the keys alone
    checked = CliRunner().invoke(
        app, ["audit", "check-proof", str(proof), "--public-keys", str(keys)], env=no_secrets
    )
    assert checked.exit_code == 0, checked.output
    assert "proved: record 5" in " ".join(checked.output.split())

    doc = json.loads(proof.read_text())
    cp = doc["checkpoint"]
    assert cp["tree_size"] == 11  # the newest signed head
    leaf = hashlib.sha256(b"\x00" + doc["record"].encode()).digest()
    path = [bytes.fromhex(p) for p in doc["path"]]
    assert _root_from_path(leaf, doc["leaf_index"], cp["tree_size"], path).hex() == cp["root"]
    public = Ed25519PublicKey.from_public_bytes(
        __import__("base64").b64decode(json.loads(keys.read_text())["keys"][cp["key_id"]])
    )
    signed = (
        b"infoshare audit checkpoint v1\n"
        + f"{cp['tree_size']}\n{cp['root']}\n{cp['chain_head']}\n{cp['created_at']}\n"
        f"{cp['key_id']}".encode()
    )
    public.verify(bytes.fromhex(cp["signature"]), signed)  # raises if it does not


def test_an_altered_proof_another_key_or_an_edited_store_is_caught(
    trail: tuple[AuditStore, dict[str, str], Keyring], tmp_path: Path
) -> None:
    store, env, _ = trail
    keys = tmp_path / "public-keys.json"
    _cli(env, "public-keys", "--out", str(keys))
    proof = tmp_path / "proof.json"
    _cli(env, "prove", env["r2"], "--size", "4", "--out", str(proof))
    doc = json.loads(proof.read_text())
    assert doc["checkpoint"]["tree_size"] == 4

    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps({**doc, "record": doc["record"].replace("shared", "withheld")}))
    said = _cli(env, "check-proof", str(altered), "--public-keys", str(keys))
    assert said.exit_code == 1
    assert "is not leaf 2 of the signed tree of 4" in " ".join(said.output.split())

    other = generate_keyring(tmp_path / "other" / "keyring.yaml", ["la-northshire"])
    strangers = tmp_path / "strangers.json"
    _cli({**env, "INFOSHARE_KEYRING_FILE": str(other)}, "public-keys", "--out", str(strangers))
    said = _cli(env, "check-proof", str(proof), "--public-keys", str(strangers))
    assert said.exit_code == 1 and "not one given" in said.output

    with store.engine.begin() as db:  # by hand, as anyone with write access could
        db.execute(sqlalchemy.text("UPDATE audit_entry SET decision = 'withheld' WHERE seq = 3"))
    refused = _cli(env, "prove", env["r2"])
    assert refused.exit_code == 2
    assert "record 3 no longer gives its hash" in " ".join(refused.output.split())
    assert _cli(env, "prove", "no-such-id").exit_code == 2
    assert _cli(env, "prove", env["r9"], "--size", "4").exit_code == 2
