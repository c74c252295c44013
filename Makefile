# loopml: `make demo` and `make test` work on a fresh machine (Python 3.11+, Debian/Ubuntu).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q
DEMO_DIR ?= build/demo

.PHONY: demo test lint bench soak install install-dev system-deps clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) -U pip

$(VENV)/.ml-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) -e ".[ml,serve,onnx,server]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) -e ".[dev]"
	touch $@ $(VENV)/.ml-installed

install: $(VENV)/.ml-installed
install-dev: $(VENV)/.dev-installed

system-deps:
	bash scripts/install-system-deps.sh

## demo: install, create a project, run the `train` pipeline (the second run cached), list runs, rank the models, score a file, schedule it.
demo: install
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	cd $(DEMO_DIR) && ../../$(VENV)/bin/loopml init churn
	cd $(DEMO_DIR)/churn && ../../../$(VENV)/bin/loopml run train -p alpha=0.5
	cd $(DEMO_DIR)/churn && ../../../$(VENV)/bin/loopml run train -p alpha=0.5
	cd $(DEMO_DIR)/churn && ../../../$(VENV)/bin/loopml run train -p alpha=0.05
	cd $(DEMO_DIR)/churn && ../../../$(VENV)/bin/loopml runs --sort metrics.rmse
	cd $(DEMO_DIR)/churn && ../../../$(VENV)/bin/loopml leaderboard diabetes
	cd $(DEMO_DIR)/churn && ../../../$(VENV)/bin/loopml data get diabetes@1 -o patients.parquet
	cd $(DEMO_DIR)/churn && ../../../$(VENV)/bin/loopml predict diabetes@1 patients.parquet -o scored.parquet
	cd $(DEMO_DIR)/churn && ../../../$(VENV)/bin/loopml schedule add nightly --pipeline train --cron "0 2 * * *" -p alpha=0.5
	cd $(DEMO_DIR)/churn && ../../../$(VENV)/bin/loopml schedules
	@echo
	@echo "Done. Put loopml on your PATH, then look at the project in $(DEMO_DIR)/churn:"
	@echo "  source $(VENV)/bin/activate && cd $(DEMO_DIR)/churn"
	@echo "  loopml runs show train#2        # steps reused from train#1, and why"
	@echo "  loopml runs compare train#1 train#3"
	@echo "  loopml lineage train#1"
	@echo "  loopml eval diabetes --run train#3 --output train --report eval.html"
	@echo "  loopml models show diabetes     # each new model registered as a version"
	@echo "  loopml promote diabetes 1 --to production"
	@echo "  loopml serve diabetes@production   # then: curl localhost:8000/docs"
	@echo "  loopml ui                          # the web UI: runs, DAGs, charts, models, datasets"
	@echo "  loopml server                      # REST API + web UI + the nightly schedule; docs at localhost:8765/api/docs"

## test: install Python and Debian dependencies (PostgreSQL), lint, then the whole suite.
test: install-dev system-deps
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -n 2 --dist loadgroup -q --durations=15

lint: install-dev
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

## soak: the reliability tests at their soak sizes (RELIABILITY.md), printing their figures; slow.
soak: install-dev system-deps
	LOOPML_SOAK=1 R06_BLOB_MB=200 $(VENV)/bin/pytest -p no:xdist -s -q tests/reliability

## bench: print the core, data, evaluation, monitoring, serving, server and web UI figures (DESIGN.md §6 budgets).
## bench/monitoring.py creates build/bench-venvs/evidently on first use (Evidently, never a loopml dependency).
bench: install-dev
	$(PY) bench/core.py
	$(PY) bench/data.py
	$(PY) bench/eval.py
	$(PY) bench/monitoring.py
	$(PY) bench/serving.py
	$(PY) bench/server.py
	$(PY) bench/ui.py

clean:
	rm -rf build .pytest_cache
