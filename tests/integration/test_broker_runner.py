"""The broker runner never signals a process that is not its own Kafka."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from deploy.devstack.broker import BrokerError, BrokerNode
from deploy.devstack.paths import default_cache_dir
from deploy.devstack.ports import free_listen_port


def test_a_stale_pid_file_does_not_make_stop_kill_another_process(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        (tmp_path / "kafka.pid").write_text(str(bystander.pid))
        node = BrokerNode(
            state_dir=tmp_path, cache_dir=default_cache_dir(), port=1, controller_port=2
        )
        assert node.status().pid is None
        assert node.stop() is False
        assert bystander.poll() is None  # still alive
    finally:
        bystander.kill()
        bystander.wait()


def test_storage_made_without_security_is_refused_secured_with_what_to_do(tmp_path: Path) -> None:
    # A broker formatted in plaintext has no administrator: a secured start must say so,
    # not fail later on a login nobody can make.
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "meta.properties").write_text("version=1\n")
    port = free_listen_port(3)
    node = BrokerNode(
        state_dir=tmp_path,
        cache_dir=default_cache_dir(),
        port=port,
        controller_port=port + 1,
        tls_port=port + 2,
    )
    with pytest.raises(BrokerError, match="made without security"):
        node.start()
    assert node.status().pid is None  # nothing was started
