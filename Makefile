# The two commands a newcomer runs: `make demo` and `make test`. Both install what they
# need (a virtualenv with the project, the pinned Kafka jars) idempotently and quietly.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Most tests wait on Kafka rather than compute: four workers share two cores well. A test
# module runs on one worker (its module-scoped stack starts once), the longest test first.
PYTEST_PARALLEL ?= -n 4 --dist loadscope --no-loadscope-reorder

.PHONY: demo test test-cluster lint unit integration e2e run kafka-jars observe-backends browser clean help bench bench-more mutate

help:
	@echo "make demo   - run the CP-IS scenario end to end on a real Kafka, print the result"
	@echo "make test   - lint, type-check and run the whole suite (real Kafka included)"
	@echo "make test-cluster - the three-broker cluster fault run, alone (CI runs it too)"
	@echo "make run    - run the whole stack in the foreground until Ctrl-C (infoshare up)"
	@echo "make lint   - ruff and mypy strict"
	@echo "make bench  - the fast-path benchmark and its plot, the policy decision, agency services and delivery (docs/benchmarks.md)"
	@echo "make bench-more - every other benchmark"
	@echo "make mutate - mutation testing of the policy core and the audit chain (docs/mutation.md)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV) || \
		{ echo "python3 -m venv failed: install it (apt-get install python3-venv)"; exit 1; }
	@$(BIN)/python -m pip install -q --upgrade pip >/dev/null
	@PYTHONWARNINGS=ignore $(BIN)/python -m pip install -q -e '.[dev]'  # setuptools warns on every editable install
	@touch $(STAMP)

kafka-jars: $(STAMP)
	@$(BIN)/infoshare kafka fetch --quiet

# Zipkin's pinned server jar; Jaeger built from the Go module proxy (once, where Go is);
# Debian's prometheus package when we are root.
observe-backends: $(STAMP)
	@$(BIN)/infoshare observe fetch --quiet

# Debian's chromium package when we are root, and the pinned axe-core (npm): the browser tests'.
browser: $(STAMP)
	@$(BIN)/infoshare browser fetch --quiet

demo: $(STAMP) kafka-jars observe-backends
	@$(BIN)/infoshare demo

run: $(STAMP) kafka-jars
	@$(BIN)/infoshare up

lint: $(STAMP)
	@$(BIN)/ruff check services consent deploy tests
	@$(BIN)/ruff format --check services consent deploy tests
	@$(BIN)/mypy services consent deploy tests

test: $(STAMP) kafka-jars observe-backends browser lint
	@$(BIN)/pytest -q $(PYTEST_PARALLEL)

# The three-broker cluster's fault run, alone (three JVMs beside the parallel suite would
# starve it); .ci/run runs it after make test.
test-cluster: $(STAMP) kafka-jars
	@$(BIN)/pytest -q -m cluster

unit: $(STAMP)
	@$(BIN)/pytest -q tests/unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# The bench extra: matplotlib for the fast-path plot, and the profilers (py-spy, pyinstrument).
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	@PYTHONWARNINGS=ignore $(BIN)/python -m pip install -q -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

# The fast-path report and its plot, the decision beside the yardstick, the agency services
# and delivery beside their bare yardsticks: about 17 minutes, unattended. bench-more runs
# every other benchmark (an hour or more).
bench: $(BENCH_STAMP) kafka-jars
	@$(BIN)/infoshare bench fastpath --write docs/benchmarks.md
	@$(BIN)/infoshare bench policy --write docs/benchmarks.md
	@$(BIN)/infoshare bench agencies --write docs/benchmarks.md
	@$(BIN)/infoshare bench delivery --write docs/benchmarks.md

bench-more: $(BENCH_STAMP) kafka-jars
	@$(BIN)/infoshare bench simulate --write docs/benchmarks.md
	@$(BIN)/infoshare bench processor --write docs/benchmarks.md
	@$(BIN)/infoshare bench audit --write docs/benchmarks.md
	@$(BIN)/infoshare bench telemetry --write docs/benchmarks.md
	@$(BIN)/infoshare bench kafka --write docs/benchmarks.md

# The mutate extra: mutmut. Mutation testing of consent/core and the audit chain, each with
# the unit tests that cover it, in a copy of the tree (never this one), one mutant at a time
# and niced: about 50 minutes on two busy cores. Not part of make test (docs/mutation.md).
# One target: make mutate MUTATE_ARGS="--target audit-chain".
MUTATE_ARGS ?=
MUTATE_STAMP := $(VENV)/.installed-mutate
$(MUTATE_STAMP): $(STAMP)
	@PYTHONWARNINGS=ignore $(BIN)/python -m pip install -q -e '.[dev,mutate]'
	@touch $(MUTATE_STAMP)

mutate: $(MUTATE_STAMP)
	@nice -n 10 $(BIN)/infoshare mutate $(MUTATE_ARGS)
