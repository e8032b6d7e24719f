# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Start the whole system on the embedded default (SQLite files + embedded broker).
run: $(STAMP)
	$(BIN)/o2c up

## Lint, check the import boundaries and the types, run the whole suite.
test: $(STAMP) lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python docs/api_reference.py --check
	$(BIN)/python docs/event_catalogue.py --check

bench: $(STAMP)
	$(BIN)/o2c bench store

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
