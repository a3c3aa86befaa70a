"""The observability backends infoshare runs for its tests and its operators: Zipkin's
server (traces) and Prometheus (metrics), each on loopback, each a process of our own."""

from deploy.devstack.observe.errors import ObserveError
from deploy.devstack.observe.prometheus import PrometheusServer, Sample
from deploy.devstack.observe.zipkin import ZipkinServer

__all__ = ["ObserveError", "PrometheusServer", "Sample", "ZipkinServer"]
