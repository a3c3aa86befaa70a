"""The event backbone every service shares.

The event envelope and schema validation, Kafka client factories and topic names, the
agency directory, keyed identifiers, settings and telemetry set-up. Modules here import
nothing at package import time, so the pure core may use the pure ones (``identifiers``,
``keyed``) without pulling in Kafka or HTTP.
"""
