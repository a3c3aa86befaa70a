"""The dev stack: everything that runs infoshare on one machine for a newcomer, the demo and
the tests: the pinned Kafka broker, the project's PostgreSQL cluster, Zipkin and Prometheus,
free ports, the stack runner, and the demo scenario."""
