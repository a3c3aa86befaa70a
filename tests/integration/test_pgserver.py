"""The project's PostgreSQL cluster for real: a start that fails says why, clusters whose
owner is gone are swept away, a test's database is dropped even while still in use."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import psycopg
import pytest

from deploy.devstack.broker.node import port_open
from deploy.devstack.ports import free_listen_port
from deploy.devstack.postgres import PostgresError, PostgresNode


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


@pytest.mark.skipif(os.geteuid() != 0, reason="only root keeps clusters under ROOT_DATA")
def test_sweep_stops_and_deletes_clusters_whose_home_is_gone(
    tmp_path: Path, postgres: PostgresNode
) -> None:
    state_dir = tmp_path / "state"
    port = free_listen_port()
    orphan = PostgresNode(state_dir=state_dir, port=port)
    orphan.start()
    cluster = orphan.data_dir.parent
    try:
        assert (cluster / "home").read_text().strip() == str(orphan.home.resolve())
        shutil.rmtree(state_dir)  # as when pytest removes the directories of a killed run

        assert cluster in PostgresNode.sweep_orphans()
        assert not cluster.exists()
        assert not port_open(port)
        # The session's cluster, whose home is still there, is left alone.
        assert postgres.status().running
        assert postgres.data_dir.exists()
    finally:
        orphan.destroy()


def test_drop_database_drops_it_while_connections_remain(postgres: PostgresNode) -> None:
    name = "t_drop_me"
    in_use = postgres.ensure_database(name).replace("postgresql+psycopg:", "postgresql:")
    with psycopg.connect(in_use):
        postgres.drop_database(name)
    with psycopg.connect(in_use.replace(f"/{name}", "/postgres")) as conn:
        left = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        assert left.fetchone() is None
    postgres.drop_database(name)  # again: nothing to drop, no error
