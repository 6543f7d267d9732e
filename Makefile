# The two commands: `make dev` runs the whole backend locally, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: dev test test-unit lint format bench clean test-tools

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

dev: $(INSTALLED)
	$(BIN)/bothways dev

# Real protocol peers the tests use: promtool lints /metrics. Installed from Debian when missing.
test-tools:
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "installing Debian's prometheus package for promtool"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	} || { echo "promtool is missing and could not be installed: apt-get install prometheus"; exit 1; }

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

bench: $(INSTALLED)
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/calendar.py

clean:
	rm -rf $(VENV) .bothways .pytest_cache .mypy_cache .ruff_cache
