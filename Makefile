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

## Lint, check the import boundaries, run the whole suite on TEST_WORKERS pytest-xdist
## workers (the tests mostly wait on services, the broker and PostgreSQL; TEST_WORKERS=0: serial).
TEST_WORKERS ?= 2
test: $(STAMP) lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python docs/api_reference.py --check

bench: $(STAMP)
	$(BIN)/o2c bench store

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
