"""The project's PostgreSQL cluster for real: a start that fails says why, clusters whose
owner is gone are swept away (and only those: never one another worker may be using), a
test's database is dropped even while still in use."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from deploy.devstack.broker.node import port_open
from deploy.devstack.ports import free_listen_port
from deploy.devstack.postgres import PostgresError, PostgresNode, orphans
from deploy.devstack.postgres.install import find_bin
from deploy.devstack.postgres.node import ROOT_DATA


def test_a_start_that_fails_quotes_the_server_log(tmp_path: Path) -> None:
    port = free_listen_port()
    pg = PostgresNode(state_dir=tmp_path, port=port)
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", port))
            taken.listen()
            with pytest.raises(PostgresError) as failed:
                pg.start()
        message = str(failed.value)
        assert f"did not start on 127.0.0.1:{port}" in message
        assert "Address already in use" in message  # the server's own words, from its log
        assert len(message.splitlines()) <= 16
    finally:
        pg.destroy()


ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="only root keeps clusters there")


def _start_elsewhere(state_dir: Path, port: int) -> PostgresNode:
    """A cluster started by another process, which has exited since: as a run now gone."""
    code = (
        "import sys; from pathlib import Path; from deploy.devstack.postgres import PostgresNode;"
        " PostgresNode(state_dir=Path(sys.argv[1]), port=int(sys.argv[2])).start()"
    )
    subprocess.run([sys.executable, "-c", code, str(state_dir), str(port)], check=True, timeout=120)
    return PostgresNode(state_dir=state_dir, port=port)


def _age(cluster: Path) -> None:
    """Make ``cluster`` look as old as a cluster left by a run killed a while ago."""
    then = time.time() - orphans.GRACE_S - 60
    for path in (cluster, cluster / "home"):
        os.utime(path, (then, then))


@ROOT_ONLY
def test_sweep_stops_and_deletes_a_cluster_whose_home_and_owner_are_gone(
    tmp_path: Path, postgres: PostgresNode
) -> None:
    state_dir = tmp_path / "state"
    port = free_listen_port()
    orphan = _start_elsewhere(state_dir, port)
    cluster = orphan.data_dir.parent
    try:
        assert (cluster / "home").read_text().strip() == str(orphan.home.resolve())
        assert port_open(port)
        shutil.rmtree(state_dir)  # as when pytest removes the directories of a killed run
        _age(cluster)

        assert cluster in PostgresNode.sweep_orphans()
        assert not cluster.exists()
        assert not port_open(port)
        # The session's cluster, whose home is still there, is left alone.
        assert postgres.status().running
        assert postgres.data_dir.exists()
    finally:
        orphan.destroy()


@ROOT_ONLY
@pytest.mark.parametrize("owner", ["still running", "just started"])
def test_sweep_keeps_a_cluster_whose_home_is_gone_while_it_may_be_in_use(
    tmp_path: Path, owner: str
) -> None:
    # Its home can be missing here and its cluster still be used: a run's directory removed
    # under it, or a worker whose /tmp is not ours; or a cluster made a moment ago.
    state_dir = tmp_path / "state"
    port = free_listen_port()
    if owner == "still running":
        node = PostgresNode(state_dir=state_dir, port=port)
        node.start()  # this process claims it
    else:
        node = _start_elsewhere(state_dir, port)
    cluster = node.data_dir.parent
    try:
        shutil.rmtree(state_dir)
        if owner == "still running":
            _age(cluster)

        assert cluster not in PostgresNode.sweep_orphans()
        assert (cluster / "data" / "PG_VERSION").exists()
        assert port_open(port)
    finally:
        node.destroy()


@pytest.fixture
def fake_root() -> Iterator[Path]:
    """A root data directory of the test's own, where the postgres user can reach."""
    root = Path(tempfile.mkdtemp(prefix="sweep-test-", dir=ROOT_DATA.parent))
    shutil.chown(root, "postgres", "postgres")
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@ROOT_ONLY
def test_sweep_never_signals_the_process_a_stale_pid_file_names(
    tmp_path: Path, fake_root: Path
) -> None:
    # The pid of a postmaster long gone, reused since: by another worker's postmaster, say.
    bystander = subprocess.Popen(["sleep", "300"], user="postgres")
    installed = find_bin()
    try:
        for name, home in (("dead", str(tmp_path / "gone")), ("unrecorded", None)):
            data = fake_root / name / "data"
            data.mkdir(parents=True)
            (data / "PG_VERSION").write_text(f"{installed.parent.name if installed else 17}\n")
            (data / "postmaster.pid").write_text(f"{bystander.pid}\n{data}\n")
            for path in (data.parent, data, *data.iterdir()):
                shutil.chown(path, "postgres", "postgres")
            if home is not None:
                (data.parent / "home").write_text(f"{home}\n")
                _age(data.parent)

        assert orphans.sweep(fake_root) == [fake_root / "dead"]
        assert not (fake_root / "dead").exists()
        assert (fake_root / "unrecorded" / "data").exists()  # nothing says whose it is
        assert bystander.poll() is None  # not signalled
    finally:
        bystander.kill()
        bystander.wait()


def test_drop_database_drops_it_while_connections_remain(postgres: PostgresNode) -> None:
    name = "t_drop_me"
    in_use = postgres.ensure_database(name).replace("postgresql+psycopg:", "postgresql:")
    with psycopg.connect(in_use):
        postgres.drop_database(name)
    with psycopg.connect(in_use.replace(f"/{name}", "/postgres")) as conn:
        left = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        assert left.fetchone() is None
    postgres.drop_database(name)  # again: nothing to drop, no error
