# The two commands: `make dev` runs the whole backend locally, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: dev demo test test-unit lint format bench clean test-tools

$(INSTALLED): pyproject.toml setup.py services/sla/_clock_core.pyx
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

dev: $(INSTALLED)
	$(BIN)/bothways dev $(ARGS)

# The stack with a simulated IT organisation playing its ITSM platforms into it (docs/simulator.md).
demo: $(INSTALLED)
	$(BIN)/bothways dev --demo $(ARGS)

# Real protocol peers the tests use, installed from Debian when missing: promtool lints /metrics,
# Alertmanager sends real webhooks, chromium runs the browser tests.
TEST_TOOLS := promtool:prometheus prometheus-alertmanager:prometheus-alertmanager chromium:chromium
test-tools:
	@missing=""; for tool in $(TEST_TOOLS); do \
	  command -v $${tool%%:*} >/dev/null 2>&1 || missing="$$missing $${tool##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	  || { echo "could not install$$missing: apt-get install$$missing"; exit 1; }; \
	fi

test: $(INSTALLED) test-tools
	$(BIN)/pytest

test-unit: $(INSTALLED)
	$(BIN)/pytest -m unit

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every benchmark of issue 9, one table against same-run baselines, bench/results.json (docs/performance.md).
# `make bench ARGS=--quick` runs reduced sizes, `ARGS="--only ingest"` one bench, and
# `ARGS="--wait-quiet 10"` waits up to 10 minutes before each bench for the shared machine to calm down.
bench: $(INSTALLED)
	$(BIN)/python bench/run.py $(ARGS)

clean:
	rm -rf $(VENV) .bothways .pytest_cache .mypy_cache .ruff_cache
