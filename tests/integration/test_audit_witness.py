"""A witness with a key of its own cosigns the trail's checkpoints as the trail grows, and
never again once it was rewritten; ``infoshare audit verify --witness --witness-key``
requires its cosignature and finds a store cut short of what it cosigned. The witness runs
as a real HTTP service on a port of its own."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy
from typer.testing import CliRunner

from deploy.cli.main import app
from deploy.devstack.ports import free_listen_port
from services.audit.sealing import sealing_from
from services.audit.store import AuditStore
from services.audit.witnessing import witness
from services.backbone.keyring import generate_keyring, load_keyring
from services.witness.app import WitnessSettings, create_app, new_witness_key
from tests.audit_records import decision
from tests.integration.served import served


@dataclass
class Witnessed:
    store: AuditStore
    url: str
    public: str  # the witness's public key, base64
    env: dict[str, str]
    keys: Path  # the trail's public keys


@pytest.fixture
def witnessed(database_url: str, tmp_path: Path) -> Iterator[Witnessed]:
    keyring_path = generate_keyring(tmp_path / "hub" / "keyring.yaml", ["la-northshire"])
    keyring = load_keyring(keyring_path)
    store = AuditStore(database_url, sealing_from(keyring, tmp_path / "cp.jsonl"))
    store.create_schema()
    keys = tmp_path / "audit-keys.json"
    hub = {"INFOSHARE_KEYRING_FILE": str(keyring_path)}
    assert (
        CliRunner().invoke(app, ["audit", "public-keys", "--out", str(keys)], env=hub).exit_code
        == 0
    )
    away = tmp_path / "witness"
    public = new_witness_key(away / "witness.key")
    settings = WitnessSettings(
        witness_key_file=away / "witness.key",
        witness_log_keys=keys,
        witness_state_file=away / "cosigned.json",
    )
    env = {
        "INFOSHARE_AUDIT_DATABASE_URL": database_url,
        "INFOSHARE_AUDIT_CHECKPOINT_FILE": str(tmp_path / "cp.jsonl"),
        "INFOSHARE_KEYRING_FILE": str(tmp_path / "no-keyring.yaml"),
    }
    with served(create_app(settings), free_listen_port()) as url:
        yield Witnessed(store, url, public, env, keys)
    store.engine.dispose()


def _cosign_once(w: Witnessed) -> None:
    async def once() -> None:
        stop = asyncio.Event()
        stop.set()  # one pass
        await witness(w.store.engine, w.store.sealing, w.url, stop=stop)

    asyncio.run(once())


def _verify(w: Witnessed, *extra: str) -> tuple[int, str]:
    args = ["audit", "verify", "--no-topic", "--public-keys", str(w.keys), "--witness", w.url]
    result = CliRunner().invoke(app, [*args, *extra], env=w.env)
    return result.exit_code, " ".join(result.output.split())


def test_the_witness_cosigns_as_the_trail_grows_and_verify_requires_it(
    witnessed: Witnessed, tmp_path: Path
) -> None:
    w = witnessed
    keyring = load_keyring(tmp_path / "hub" / "keyring.yaml")
    w.store.add_batch([decision(keyring, i) for i in range(5)])
    _cosign_once(w)
    w.store.add_batch([decision(keyring, i) for i in range(5, 9)])
    _cosign_once(w)  # from 5 to 9: a consistency proof the witness checks
    latest = httpx.get(w.url + "/latest").json()
    assert latest["checkpoint"]["tree_size"] == 9

    code, said = _verify(w, "--witness-key", w.public)
    assert code == 0 and "intact: 9 record(s)" in said, said
    stranger = base64.b64encode(bytes(32)).decode()  # not the witness's key
    code, said = _verify(w, "--witness-key", stranger)
    assert code in (1, 2), said  # an all-zero point may not even be a key

    # Cut the store short of what the witness cosigned (and the file with it): found.
    with w.store.engine.begin() as db:
        db.execute(sqlalchemy.text("DELETE FROM audit_entry WHERE seq > 5"))
        db.execute(sqlalchemy.text("DELETE FROM audit_checkpoint WHERE tree_size > 5"))
    lines = Path(w.env["INFOSHARE_AUDIT_CHECKPOINT_FILE"]).read_text().splitlines()
    Path(w.env["INFOSHARE_AUDIT_CHECKPOINT_FILE"]).write_text(lines[0] + "\n")
    code, said = _verify(w, "--witness-key", w.public)
    assert code == 1 and "the witness at" in said, said


def test_a_rewritten_trail_never_gets_the_witness_to_cosign_again(
    witnessed: Witnessed, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The operator rewrites history from record 3 and signs it again with the trail's own
    key: the witness, which cosigned 6 records, refuses the new head of 8, and the audit
    service raises the alarm."""
    w = witnessed
    keyring = load_keyring(tmp_path / "hub" / "keyring.yaml")
    w.store.add_batch([decision(keyring, i) for i in range(6)])
    _cosign_once(w)
    with w.store.engine.begin() as db:
        db.execute(sqlalchemy.text("DELETE FROM audit_entry WHERE seq > 2"))
        db.execute(sqlalchemy.text("DELETE FROM audit_checkpoint"))
    w.store.add_batch([decision(keyring, i, reason="rewritten") for i in range(2, 8)])
    with caplog.at_level(logging.ERROR, logger="services.audit.witnessing"):
        _cosign_once(w)
    assert (
        "ALERT the witness refused to cosign the audit trail: no proof that the trail of 8 "
        "records grew from the 6 cosigned" in caplog.text
    )
    assert httpx.get(w.url + "/latest").json()["checkpoint"]["tree_size"] == 6
