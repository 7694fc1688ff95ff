# Two commands on a fresh machine with Python 3.11+ and make:
#   make run    install everything, build the warehouse from data/landing, print the headline
#   make test   run the test suite
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

# One variable per path, absolute, shared by Dagster and dbt (dbt runs from dbt/).
export WAREHOUSE_PATH := $(abspath $(or $(WAREHOUSE_PATH),data/warehouse.duckdb))
export CUSTOMS_LANDING_DIR := $(abspath $(or $(CUSTOMS_LANDING_DIR),data/landing))
export DAGSTER_HOME := $(abspath $(or $(DAGSTER_HOME),data/dagster_home))
# No network here, and no telemetry anywhere.
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export DAGSTER_DISABLE_TELEMETRY := 1
export GX_ANALYTICS_ENABLED := False
export UV_COMPILE_BYTECODE := 1
unexport PYTHONDONTWRITEBYTECODE

UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
DBT_SOURCES := $(shell find dbt/models dbt/macros dbt/seeds dbt/tests dbt/snapshots -type f 2>/dev/null) dbt/dbt_project.yml dbt/profiles.yml
MANIFEST := dbt/target/manifest.json

.PHONY: help install run test test-fast dev manifest sample seeds compat bench chaos clean

help:
	@echo "make run     build the warehouse from \$$CUSTOMS_LANDING_DIR (default data/landing) into \$$WAREHOUSE_PATH"
	@echo "make test    run the tests (make test-fast: the edit loop, without the slow scenarios, daemon and kill tests)"
	@echo "make dev     Dagster UI on http://127.0.0.1:3000 (DAGSTER_HOST=0.0.0.0 to expose it deliberately)"
	@echo "make sample  regenerate the bundled sample extracts;  make seeds  rebuild dbt seeds from data/reference/gacc"

# uv is bootstrapped into .tools/ when the machine has none.
.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet uv

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced $(DAGSTER_HOME)/dagster.yaml

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

# The dbt manifest Dagster loads; `dagster dev` re-parses by itself, everything else uses this.
$(MANIFEST): $(DBT_SOURCES) $(VENV)/.synced
	cd dbt && ../$(VENV)/bin/dbt parse --quiet --profiles-dir .
	@touch $@

manifest: $(MANIFEST)

run: install $(MANIFEST)
	$(PY) -m dagster_project.cli build

test: install $(MANIFEST)
	$(PY) -m pytest

# The edit loop: everything but the multi-build scenarios, the live daemon and the kill harness.
test-fast: install $(MANIFEST)
	$(PY) -m pytest -m "not slow and not daemon and not kill"

DAGSTER_HOST ?= 127.0.0.1
DAGSTER_PORT ?= 3000
dev: install $(MANIFEST)
	$(VENV)/bin/dagster dev -h $(DAGSTER_HOST) -p $(DAGSTER_PORT) -m dagster_project.definitions

sample: $(VENV)/.synced
	$(PY) data/generate_sample.py --verify
	$(PY) data/generate_mirror_sample.py

seeds: $(VENV)/.synced
	$(PY) data/build_seeds.py

# Benchmarks (not part of the tests): BENCH_SCALE=full make bench for the national size.
bench: install $(MANIFEST)
	$(PY) bench/run.py

# Kill -9 at 20 moments of a build; every time the served file must be whole and a re-run converge.
chaos: install $(MANIFEST)
	$(PY) scripts/chaos.py --points 20

# Open the served file with the DuckDB releases BI drivers embed (downloads them into temp venvs).
compat: $(VENV)/.synced
	UV=$(UV) PYTHON=$(PYTHON) scripts/check_bi_compat.sh

# The warehouse and Dagster's record of what is built in it go together.
clean:
	rm -rf dbt/target dbt/logs data/warehouse.duckdb* data/export data/report data/docs data/quality data/dagster_home
