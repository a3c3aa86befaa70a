"""A KRaft cluster of N brokers on loopback, each a combined broker and controller of one
static quorum, sharing one CA, one administrator and one cluster id.

Node ``i`` (1-based) lives in ``<state>/node-<i>`` and listens on three consecutive ports
from ``base_port + 3 * (i - 1)``: clients (SASL_SSL), the controller, mutual TLS. With three
nodes, topics are replicated three times and a write needs two in-sync replicas, so the
cluster keeps every acknowledged record through the loss of any one broker.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from pathlib import Path

from deploy.devstack.broker.node import (
    ADMIN_USER,
    BrokerNode,
    BrokerSecrets,
    NodeStatus,
    new_cluster_id,
)
from services.backbone.kafka_access import KafkaAccess


@dataclass
class BrokerCluster:
    state_dir: Path
    cache_dir: Path
    base_port: int = 9092
    size: int = 3
    secured: bool = True

    def __post_init__(self) -> None:
        voters = tuple((i, self._port(i) + 1) for i in range(1, self.size + 1))
        self.secrets = BrokerSecrets(self.state_dir)
        self.nodes = [
            BrokerNode(
                state_dir=self.state_dir / f"node-{i}",
                cache_dir=self.cache_dir,
                port=self._port(i),
                controller_port=self._port(i) + 1,
                tls_port=self._port(i) + 2,
                secured=self.secured,
                node_id=i,
                voters=voters,
                secrets_dir=self.state_dir,
            )
            for i in range(1, self.size + 1)
        ]

    def _port(self, node_id: int) -> int:
        return self.base_port + 3 * (node_id - 1)

    def _cluster_id(self) -> str:
        path = self.state_dir / "cluster.id"
        if not path.exists():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(new_cluster_id(), encoding="utf-8")
        return path.read_text(encoding="utf-8").strip()

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def node(self, node_id: int) -> BrokerNode:
        return self.nodes[node_id - 1]

    def admin_access(self) -> KafkaAccess:
        if not self.secured:
            return KafkaAccess.plaintext(self.bootstrap)
        return self.secrets.access(self.bootstrap, ADMIN_USER, self.secrets.admin_password())

    def start(self, *, timeout: float = 120.0) -> list[NodeStatus]:
        """Start every node that is not running, together: a node of a static quorum finishes
        starting only once a majority of its voters answers."""
        if self.secured:
            self.secrets.ensure()
        cluster_id = self._cluster_id()  # formatted with one id, or they are no quorum
        for node in self.nodes:
            node.cluster_id = cluster_id
        with concurrent.futures.ThreadPoolExecutor(self.size) as pool:
            futures = [pool.submit(node.start, timeout=timeout) for node in self.nodes]
            return [f.result() for f in futures]

    def stop(self) -> None:
        with concurrent.futures.ThreadPoolExecutor(self.size) as pool:
            list(pool.map(lambda node: node.stop(), self.nodes))

    def status(self) -> list[NodeStatus]:
        return [node.status() for node in self.nodes]

    def describe(self) -> str:
        running = sum(s.running for s in self.status())
        how = "SASL_SSL, ACLs enforced" if self.secured else "PLAINTEXT, for debugging only"
        return f"Kafka cluster of {self.size}: {running} running at {self.bootstrap} ({how})"
