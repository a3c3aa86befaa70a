"""Delivery to recipient agencies: their Kafka topic, and a pull inbox over HTTP."""
