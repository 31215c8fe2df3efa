# gitops-ml: the tasks humans, hooks and CI share. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

# Prefect's telemetry logs "database is locked" errors on a busy SQLite database.
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_LOGGING_LEVEL ?= WARNING

.PHONY: help install demo test test-fast check lint format bench clean

help: ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

# One command from a fresh clone: .venv from python3, then exactly what uv.lock says (--locked refuses a
# uv.lock that no longer matches pyproject.toml; --no-build: binary wheels only, nothing but this project
# is built), then the deepchecks environment from its own lock. `install` always re-checks (both steps
# are no-ops when nothing changed), so it also repairs a half-built or stale deepchecks environment.
install: ## create .venv and install the project with its dev tools from uv.lock, plus the deepchecks env
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet 'uv>=0.9'
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --locked --no-build --extra dev --quiet \
	  --python $(BIN)/python
	$(BIN)/python -m gitops_ml.quality build
	@touch $(STAMP)

$(STAMP): pyproject.toml uv.lock envs/deepchecks/pyproject.toml envs/deepchecks/uv.lock
	@$(MAKE) --no-print-directory install

demo: $(STAMP) ## run the lifecycle on the bundled data (no accounts needed)
	$(BIN)/python -m gitops_ml.demo

test: $(STAMP) ## the static checks, then the whole test suite (what CI runs)
	@$(MAKE) --no-print-directory check
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## unit tests only (skips slow end-to-end tests)
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

check: $(STAMP) ## ruff lint + format check + mypy (also the pre-commit hooks)
	$(BIN)/ruff check src flows tests benchmarks
	$(BIN)/ruff format --check src flows tests benchmarks
	$(BIN)/mypy

lint: $(STAMP) ## the static checks + workflow linters
	@$(MAKE) --no-print-directory check
	$(BIN)/zizmor --offline .github/workflows

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src flows tests benchmarks
	$(BIN)/ruff format src flows tests benchmarks

clean: ## remove generated reports and local stores (keeps .venv)
	rm -rf reports .model-store predictions.db predictions.db-*
