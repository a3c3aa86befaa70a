"""The transactional outbox of an agency service: a request's submission and the events it
produced are stored in one database transaction, and a relay publishes them to Kafka. An
accepted record is never lost, even while Kafka is down."""
