"""The broker runner never signals a process that is not its own Kafka."""

from __future__ import annotations

import subprocess
from pathlib import Path

from deploy.devstack.broker import BrokerNode
from deploy.devstack.paths import default_cache_dir


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
