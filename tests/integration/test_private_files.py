"""What holds state is its owner's alone, whatever the umask (here 000, which would leave
every new file world-writable): the state directory (from the CLI's --state-dir and the
stack), SQLite databases with their -wal and -shm files, the audit checkpoint file and the
components' logs are created 0700 (directories) and 0600 (files)."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import text
from typer.testing import CliRunner

from deploy.cli.terminal import StateDir
from deploy.devstack.stack import Stack, StackConfig
from services.audit.sealing import sealing_from
from services.audit.store import AuditStore
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.database import engine_for
from services.backbone.keyring import Keyring
from services.backbone.private_files import open_private, private_dir, private_file
from services.ops.components import COMPONENTS


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    before = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_directories_are_made_0700_with_their_missing_parents(tmp_path: Path) -> None:
    private_dir(tmp_path / "a" / "b" / "c")
    for made in ("a", "a/b", "a/b/c"):
        assert _mode(tmp_path / made) == 0o700, made
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    private_dir(shared)
    assert _mode(shared) == 0o750  # the operator's own directory is left as it is


def test_files_are_made_0600_and_a_file_written_again_is_made_so(tmp_path: Path) -> None:
    assert private_file(tmp_path / "new.db") and _mode(tmp_path / "new.db") == 0o600
    assert not private_file(tmp_path / "new.db")
    log = tmp_path / "logs" / "x.log"
    with open_private(log, "ab") as out:
        out.write(b"one\n")
    assert _mode(log) == 0o600 and _mode(log.parent) == 0o700
    log.chmod(0o644)
    with open_private(log, "ab") as out:
        out.write(b"two\n")
    assert _mode(log) == 0o600 and log.read_bytes() == b"one\ntwo\n"


def test_sqlite_databases_and_their_wal_and_shm_files_are_0600(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    engine = engine_for(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with engine.connect() as conn:  # held open, so that the -wal and -shm files remain
        conn.execute(text("SELECT x FROM t")).all()
        made = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert {p.name: _mode(p) for p in made} == {p.name: 0o600 for p in made}
    engine.dispose()
    engine_for("sqlite://").dispose()  # in memory: no file to make


def _record(offset: int) -> AuditRecord:
    return AuditRecord.about(
        topic="source.x",
        partition=0,
        offset=offset,
        recorded_at=datetime.now(UTC),
        action="disclose",
        decision=AuditOutcome.WITHHELD,
        reason_code="withheld.no_protocol",
        reason="no protocol covers it",
        actor="infoshare-processor",
    )


def test_the_audit_checkpoint_file_and_its_directory_are_private(
    tmp_path: Path, keyring: Keyring
) -> None:
    checkpoints = tmp_path / "audit" / "checkpoints.jsonl"
    store = AuditStore(
        f"sqlite:///{tmp_path / 'audit.db'}",
        sealing_from(keyring, checkpoints, checkpoint_every=1),
    )
    store.create_schema()
    store.add_batch([_record(1)])
    assert checkpoints.read_bytes()  # a checkpoint was written
    assert _mode(checkpoints) == 0o600 and _mode(checkpoints.parent) == 0o700
    assert _mode(tmp_path / "audit.db") == 0o600


def test_the_stack_makes_its_state_and_log_directories_and_logs_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "home" / "state"
    stack = Stack(StackConfig(state_dir=state, cache_dir=tmp_path / "cache"))
    started: list[Any] = []

    def popen(*args: Any, **kwargs: Any) -> Any:
        started.append(kwargs["stdout"])
        return object()

    monkeypatch.setattr(subprocess, "Popen", popen)  # no component is started
    monkeypatch.setattr(Stack, "_env", lambda self, component: {})
    component = COMPONENTS[0]
    stack._spawn(component, mode="wb")
    log = state / "logs" / f"{component.name}.log"
    assert started and _mode(log) == 0o600
    assert _mode(state / "logs") == _mode(state) == _mode(state.parent) == 0o700
    log.chmod(0o644)  # from before this rule: made private when it is written again
    stack._spawn(component, mode="ab")
    assert _mode(log) == 0o600


def test_the_clis_state_directory_option_makes_it_private(tmp_path: Path) -> None:
    cli = typer.Typer()

    @cli.command()
    def where(state_dir: StateDir) -> None:
        typer.echo(str(state_dir))

    given = tmp_path / "given" / "state"
    assert CliRunner().invoke(cli, ["--state-dir", str(given)]).exit_code == 0
    by_env = tmp_path / "env" / "state"
    result = CliRunner().invoke(cli, [], env={"INFOSHARE_STATE_DIR": str(by_env)})
    assert result.exit_code == 0 and result.output.strip() == str(by_env)
    for made in (given, given.parent, by_env, by_env.parent):
        assert _mode(made) == 0o700, made
