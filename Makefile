# The two commands: `make dev` runs the whole backend locally, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: dev test test-unit lint format bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

dev: $(INSTALLED)
	$(BIN)/bothways dev

test: $(INSTALLED)
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
