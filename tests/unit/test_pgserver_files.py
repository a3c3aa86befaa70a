"""The project's PostgreSQL cluster, as far as it is files and decisions: the password made
once and kept private, no installing from `status` or `stop`, no starting data of a server
version that is not installed. Nothing here runs PostgreSQL."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy.cli.main import app
from deploy.devstack.postgres import PostgresError, PostgresNode, install, node

runner = CliRunner()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_password_is_made_once_when_nodes_race(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    seen: list[str] = []

    def ask() -> None:
        barrier.wait()
        seen.append(PostgresNode(state_dir=tmp_path).password())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(seen) == 8 and len(set(seen)) == 1 and len(seen[0]) >= 24
    assert (tmp_path / "postgres" / "password").read_text() == seen[0]
    assert _mode(tmp_path / "postgres" / "password") == 0o600
    assert _mode(tmp_path / "postgres") == 0o700


def test_password_home_is_made_private_when_it_already_exists(tmp_path: Path) -> None:
    home = tmp_path / "postgres"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    PostgresNode(state_dir=tmp_path).password()
    assert _mode(home) == 0o700


def test_password_waits_while_another_process_writes_it(tmp_path: Path) -> None:
    home = tmp_path / "postgres"
    home.mkdir()
    path = home / "password"
    path.touch(mode=0o600)  # created, not yet written, by someone else
    writer = threading.Timer(0.3, path.write_text, args=("written-by-the-other",))
    writer.start()
    try:
        assert PostgresNode(state_dir=tmp_path).password() == "written-by-the-other"
    finally:
        writer.join()


def test_an_empty_password_file_is_an_error_not_an_empty_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(node, "PASSWORD_WAIT", 0.2)
    (tmp_path / "postgres").mkdir()
    (tmp_path / "postgres" / "password").touch()
    with pytest.raises(PostgresError, match="is empty"):
        PostgresNode(state_dir=tmp_path).password()


@pytest.fixture
def nothing_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> Path:
        raise AssertionError("installed PostgreSQL")

    monkeypatch.setattr(install, "find_bin", lambda: None)
    monkeypatch.setattr(install, "bin_for", lambda version: None)
    monkeypatch.setattr(install, "ensure_server", refuse)
    monkeypatch.setattr(node, "bin_for", lambda version: None)
    monkeypatch.setattr(node, "ensure_server", refuse)


@pytest.mark.usefixtures("nothing_installed")
def test_status_and_stop_install_nothing(tmp_path: Path) -> None:
    pg = PostgresNode(state_dir=tmp_path, port=1)
    current = pg.status()
    assert not current.running and not current.installed
    assert current.describe() == "PostgreSQL is not running (PostgreSQL is not installed)"
    assert pg.stop() is False


@pytest.mark.usefixtures("nothing_installed")
def test_postgres_status_and_stop_commands_install_nothing(tmp_path: Path) -> None:
    status = runner.invoke(app, ["postgres", "status", "--state-dir", str(tmp_path)])
    assert status.exit_code == 3, status.output
    assert "PostgreSQL is not installed" in status.output
    stop = runner.invoke(app, ["postgres", "stop", "--state-dir", str(tmp_path)])
    assert stop.exit_code == 0, stop.output
    assert "PostgreSQL was not running" in stop.output


def test_start_refuses_data_whose_server_version_is_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse() -> Path:
        raise AssertionError("installed the newest PostgreSQL for an existing cluster")

    monkeypatch.setattr(node, "ROOT_DATA", tmp_path / "root")
    monkeypatch.setattr(node, "ensure_server", refuse)
    pg = PostgresNode(state_dir=tmp_path / "state")
    pg.data_dir.mkdir(parents=True)
    (pg.data_dir / "PG_VERSION").write_text("9\n")  # no /usr/lib/postgresql/9 anywhere now
    with pytest.raises(PostgresError, match=r"PostgreSQL 9's .* apt-get install postgresql-9"):
        pg.start()
