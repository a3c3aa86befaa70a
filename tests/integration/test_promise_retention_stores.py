"""Two promises of `infoshare retention` (README, "Retention"), run as an operator types the
commands, against SQLite stores and the real broker:

- "a store that does not exist is reported missing, never created": by the report and by
  the purge alike;
- the audit trail "is never purged by this command": a trail holding decisions older than
  any retention, whether in its own database or in the very database of the delivery log,
  is left exactly as it was by a purge that does purge the deliveries beside it;
- "nothing is purged while the protocol set does not load": a purge over stores holding
  deliveries past their retention, given a protocol set that does not load, is refused
  and leaves every row where it was."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import MetaData, Table, create_engine, inspect, select

from consent.policy.load import DEFAULT_DIR
from services.audit.sealing import sealing_from
from services.audit.store import AuditStore
from services.backbone import kafka
from services.backbone.directory import Directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import Keyring
from services.backbone.topics import Topics
from tests.audit_records import decision
from tests.integration.test_retention_cli import LA, NOTICE, _invoke, _stores

pytestmark = pytest.mark.kafka
PROTOCOL = NOTICE.split("@")[0]  # the audit names the protocol without its version


async def _env(kafka_access: KafkaAccess, namespace: str, directory: Directory) -> dict[str, str]:
    topics = Topics(namespace=namespace, partitions=1)
    await kafka.ensure_topics(
        kafka_access, [s for s in topics.all_specs(directory) if s.name == topics.audit_activity]
    )
    return {
        "INFOSHARE_KAFKA_BOOTSTRAP": kafka_access.bootstrap,
        "INFOSHARE_TOPIC_NAMESPACE": namespace,
    }


async def test_a_store_that_does_not_exist_is_reported_missing_never_created(
    kafka_access: KafkaAccess, namespace: str, directory: Directory, tmp_path: Path
) -> None:
    env = await _env(kafka_access, namespace, directory)
    delivery, inbox = tmp_path / "absent-delivery.db", tmp_path / "absent-inbox.db"
    where = [
        "--delivery-database-url",
        f"sqlite:///{delivery}",
        "--agency",
        LA,
        "--inbox",
        f"{LA}=sqlite:///{inbox}",
    ]

    shown = await _invoke(["retention", "report", "--json", *where], env)
    assert shown.exit_code == 0, shown.output
    stores = {s["store"]: s for s in orjson.loads(shown.output)["stores"]}
    assert set(stores) == {"delivery", f"inbox:{LA}"}
    for store in stores.values():
        assert store["problem"] is not None and store["problem"].startswith("missing")
        assert store["recipients"] == [] and store["last_purge"] is None
    table = await _invoke(["retention", "report", *where], env)
    assert table.exit_code == 0 and "missing" in table.output

    purged = await _invoke(["retention", "purge", "--yes", *where], env)
    assert purged.exit_code == 0, purged.output
    assert "0 purge record(s) sent" in purged.output

    assert _files(tmp_path) == []  # nothing made, not even a journal


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _trail(url: str, prefixes: tuple[str, ...] = ("audit", "over")) -> dict[str, list[Any]]:
    """Every row of every table named with one of ``prefixes`` (the audit trail's by
    default; ``("",)``: every table) of the database at ``url``."""
    engine = create_engine(url)
    try:
        tables = [t for t in inspect(engine).get_table_names() if t.startswith(prefixes)]
        with engine.connect() as db:
            every = (Table(t, MetaData(), autoload_with=db) for t in tables)
            return {t.name: sorted(map(tuple, db.execute(select(t))), key=repr) for t in every}
    finally:
        engine.dispose()


@pytest.mark.parametrize("trail_in", ["its own database", "the delivery log's database"])
async def test_the_audit_trail_is_never_purged_by_retention_purge(
    kafka_access: KafkaAccess,
    namespace: str,
    directory: Directory,
    keyring: Keyring,
    tmp_path: Path,
    trail_in: str,
) -> None:
    env = await _env(kafka_access, namespace, directory)
    now = datetime.now(UTC)
    made = _stores(tmp_path, now, Topics(namespace=namespace).deliver(LA))
    own = f"sqlite:///{tmp_path / 'audit.db'}"
    audit_url = own if trail_in == "its own database" else made["delivery"]
    env["INFOSHARE_AUDIT_DATABASE_URL"] = audit_url  # where the audit service keeps it
    trail = AuditStore(audit_url, sealing_from(keyring, tmp_path / "checkpoints.jsonl"))
    trail.create_schema()
    # Decisions to the same recipient under the same protocol as the deliveries due for
    # purge, recorded years past that protocol's two-year retention.
    old = [
        decision(keyring, n, recorded_at=now - timedelta(days=3000 - n), protocol_id=PROTOCOL)
        for n in range(5)
    ]
    assert trail.add_batch(old) == 5
    trail.engine.dispose()
    before = _trail(audit_url)
    assert len(before["audit_entry"]) == 5

    where = ["--delivery-database-url", made["delivery"], "--agency", LA]
    where += ["--inbox", f"{LA}={made['inbox']}"]
    purged = await _invoke(["retention", "purge", "--yes", *where], env)
    assert purged.exit_code == 0, purged.output
    assert "2 purge record(s) sent" in purged.output  # the deliveries beside it were purged

    assert _trail(audit_url) == before


async def test_nothing_is_purged_while_the_protocol_set_does_not_load(
    kafka_access: KafkaAccess, namespace: str, directory: Directory, tmp_path: Path
) -> None:
    env = await _env(kafka_access, namespace, directory)
    made = _stores(tmp_path, datetime.now(UTC), Topics(namespace=namespace).deliver(LA))
    bad = tmp_path / "protocols"
    shutil.copytree(DEFAULT_DIR, bad)
    (bad / "typo.yaml").write_text("id: half-written\nversion: one\n")
    before = {name: _trail(made[name], ("",)) for name in ("delivery", "inbox")}
    where = ["--delivery-database-url", made["delivery"], "--agency", LA]
    where += ["--inbox", f"{LA}={made['inbox']}", "--protocols", str(bad)]

    refused = await _invoke(["retention", "purge", "--yes", *where], env)
    assert refused.exit_code == 2, refused.output
    assert "the protocol set does not load" in refused.output
    assert {name: _trail(made[name], ("",)) for name in ("delivery", "inbox")} == before

    # The same stores and the good set: the deliveries past their retention do go.
    where[-1] = str(DEFAULT_DIR)
    purged = await _invoke(["retention", "purge", "--yes", *where], env)
    assert purged.exit_code == 0 and "2 purge record(s) sent" in purged.output, purged.output
