# lpdeploy: two commands matter — `make run` and `make test` (see README.rst).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CLUSTER_STAMP := $(VENV)/.cluster-installed

.PHONY: run cluster test lint bench mutants mutmut clean help

help:
	@echo "make run    start a master and local workers (demo site unless LPDEPLOY_CONFIG is set)"
	@echo "make cluster  two masters on a private PostgreSQL and Crossbar router, with their workers"
	@echo "make test   install into .venv and run lint, type checks and the whole test suite"
	@echo "make lint   ruff and mypy only"
	@echo "make bench  the benchmarks (tables on stdout, bench-results.json; ~20 minutes on a quiet 2-core machine)"
	@echo "make mutants  the curated semantic mutants: each must be killed by its tests (92 of them; ~15 minutes on a busy 2-core machine)"
	@echo "make mutmut   a broad mutmut sweep of the pure decision code; prints a score, never fails on it"
	@echo "make clean  remove .venv and the local run directory .run/"

$(STAMP): setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	exec $(BIN)/python -m lpdeploy.tools.localrun

# PostgreSQL's driver and the Crossbar router, for make cluster and the two-master tests
$(CLUSTER_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,cluster]'
	touch $(CLUSTER_STAMP)

cluster: $(CLUSTER_STAMP)
	exec $(BIN)/python -m lpdeploy.tools.cluster

lint: $(STAMP)
	$(BIN)/ruff check lpdeploy tests bench
	$(BIN)/mypy

# the suite in two parts: most of it in parallel (a module stays on one process: its master is shared),
# then the tests marked serial alone (they measure latency or load, or share the fresh clone)
TEST_JOBS ?= 6
test: lint $(CLUSTER_STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadfile -m "not serial" --durations=15
	$(BIN)/python -m pytest -q -m serial

bench: $(CLUSTER_STAMP)
	rm -f bench-results.json
	$(BIN)/python -m bench.partition_quality
	$(BIN)/python -m bench.decision_cost
	$(BIN)/python -m bench.gate_e2e
	$(BIN)/python -m bench.month
	$(BIN)/python -m bench.gate_month
	$(BIN)/python -m bench.dashboard
	$(BIN)/python -m bench.webhook_latency --runs 3
	$(BIN)/python -m bench.checkout
	$(BIN)/python -m bench.failover --runs 5

# every curated mutant (tests/mutants/curated.toml) applied to a scratch copy must fail its tests
mutants: $(STAMP)
	$(BIN)/python tests/mutants/run.py

# informative: the score of a broad sweep ([tool.mutmut] in pyproject.toml); survivors do not fail it
mutmut: $(STAMP)
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut export-cicd-stats
	$(BIN)/python tests/mutants/mutmut_score.py

clean:
	rm -rf $(VENV) .run mutants
