"""The observability backends infoshare runs for its tests and its operators: Zipkin's
server and Jaeger (traces) and Prometheus (metrics), each on loopback, each a process of our
own."""

from deploy.devstack.observe.errors import ObserveError
from deploy.devstack.observe.jaeger import JaegerServer
from deploy.devstack.observe.prometheus import PrometheusServer, Sample
from deploy.devstack.observe.zipkin import ZipkinServer

__all__ = ["JaegerServer", "ObserveError", "PrometheusServer", "Sample", "ZipkinServer"]
