"""The fast-path benchmark (issue 18): the consent-and-policy processor beside bare Kafka
baselines on one broker, interleaved (harness.py, bare.py), reported to docs/benchmarks.md
(report.py)."""
