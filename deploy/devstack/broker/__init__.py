"""Runs the pinned Apache Kafka broker on loopback: one KRaft node, or a cluster of them."""

from deploy.devstack.broker.cluster import BrokerCluster
from deploy.devstack.broker.errors import BrokerError
from deploy.devstack.broker.node import BrokerNode, NodeStatus

__all__ = ["BrokerCluster", "BrokerError", "BrokerNode", "NodeStatus"]
