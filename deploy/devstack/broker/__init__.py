"""Runs the pinned Apache Kafka broker as a single-node KRaft node on loopback."""

from deploy.devstack.broker.errors import BrokerError
from deploy.devstack.broker.node import BrokerNode, NodeStatus

__all__ = ["BrokerError", "BrokerNode", "NodeStatus"]
