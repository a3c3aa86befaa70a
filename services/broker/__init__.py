"""Runs the pinned Apache Kafka broker as a single-node KRaft node on loopback."""

from services.broker.errors import BrokerError
from services.broker.node import BrokerNode, NodeStatus

__all__ = ["BrokerError", "BrokerNode", "NodeStatus"]
