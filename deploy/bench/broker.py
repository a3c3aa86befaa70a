"""A broker of a benchmark's own, in a temporary directory removed afterwards."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from deploy.devstack.broker import BrokerNode
from deploy.devstack.ports import free_listen_port


@contextlib.contextmanager
def bench_broker(cache_dir: Path, say: Callable[[str], None]) -> Iterator[tuple[Path, BrokerNode]]:
    """(the temporary directory, the running broker); stopped and removed on the way out."""
    with tempfile.TemporaryDirectory(prefix="infoshare-bench-") as tmp:
        root = Path(tmp)
        port = free_listen_port(3)
        node = BrokerNode(
            state_dir=root / "kafka", cache_dir=cache_dir, port=port, controller_port=port + 1
        )
        say("starting a Kafka broker for the benchmark")
        node.start()
        try:
            yield root, node
        finally:
            node.stop()
