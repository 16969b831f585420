# lpdeploy: two commands matter — `make run` and `make test` (see README.rst).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean help

help:
	@echo "make run    start a master and local workers (demo site unless LPDEPLOY_CONFIG is set)"
	@echo "make test   install into .venv and run lint, type checks and the whole test suite"
	@echo "make lint   ruff and mypy only"
	@echo "make bench  the benchmarks (tables on stdout, bench-results.json; ~15 minutes)"
	@echo "make clean  remove .venv and the local run directory .run/"

$(STAMP): setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	exec $(BIN)/python -m lpdeploy.localrun

lint: $(STAMP)
	$(BIN)/ruff check lpdeploy tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	rm -f bench-results.json
	$(BIN)/python -m bench.partition_quality
	$(BIN)/python -m bench.decision_cost
	$(BIN)/python -m bench.gate_e2e
	$(BIN)/python -m bench.month
	$(BIN)/python -m bench.dashboard

clean:
	rm -rf $(VENV) .run
