"""The observability backends infoshare runs for its tests and its operators: Zipkin's
server (traces) and Prometheus (metrics), each on loopback, each a process of our own."""

from services.observe.errors import ObserveError
from services.observe.prometheus import PrometheusServer, Sample
from services.observe.zipkin import ZipkinServer

__all__ = ["ObserveError", "PrometheusServer", "Sample", "ZipkinServer"]
