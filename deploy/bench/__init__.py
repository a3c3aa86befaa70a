"""Benchmarks and the load generator: each measures against a bare baseline in the same run
and reports ratios; ``infoshare bench ... --write docs/benchmarks.md`` keeps the results."""
