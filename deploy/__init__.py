"""What runs the system, above the product: the dev stack (Kafka, PostgreSQL, Zipkin and
Prometheus on this machine, the stack runner, the demo), the benchmarks, and the
``infoshare`` command. Beside these packages: the broker's pom and config, the agency
directory, the Prometheus rules and the Grafana dashboard. Nothing in ``services/`` or
``consent/`` imports from here."""
