# gitops-ml: the tasks humans, hooks and CI share. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

# Prefect's telemetry logs "database is locked" on a busy SQLite (seen with Prefect 3.9); off.
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_LOGGING_LEVEL ?= WARNING

.PHONY: help install demo test test-fast lint bench clean

help: ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev tools

demo: $(STAMP) ## run the lifecycle on the bundled data (no accounts needed)
	$(BIN)/python -m gitops_ml.demo

test: $(STAMP) ## the whole test suite (what CI runs)
	$(BIN)/ruff check src flows tests benchmarks
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## unit tests only (skips slow end-to-end tests)
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP) ## ruff + workflow linters
	$(BIN)/ruff check src flows tests benchmarks
	$(BIN)/zizmor --offline .github/workflows

clean: ## remove generated reports and local stores (keeps .venv)
	rm -rf reports .model-store predictions.db predictions.db-*
