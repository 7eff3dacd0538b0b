# OneStop — the two front-door commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test install dev lint format lock messages ci clean agent-binary

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "OneStop needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python requirements.lock pyproject.toml
	$(PIP) install --require-hashes -r requirements.lock
	$(PIP) install --no-deps -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.lock agent/pyproject.toml
	$(PIP) install --require-hashes -r requirements-dev.lock
	$(PIP) install --no-deps -e ./agent
	@touch $@

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

## make demo: install, migrate the embedded SQLite database, seed demo data, serve on :8000
demo: install
	$(BIN)/onestop demo

## make test: install the dev tools and run the whole suite (SQLite)
test: dev
	$(BIN)/pytest -q

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## make lock: re-resolve the pinned dependencies after editing pyproject.toml
lock: dev
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -q -o requirements-dev.lock

## make messages: refresh and compile the translation catalogues (needs gettext)
messages: dev
	cd src/onestop && ../../$(BIN)/django-admin makemessages -l zh_Hans --no-obsolete --no-location --settings=onestop.config.settings_test
	cd src/onestop && ../../$(BIN)/django-admin compilemessages --settings=onestop.config.settings_test

## make agent-binary: the standalone agent, agent/dist/onestop-agent (PyInstaller, one file)
agent-binary: dev
	PYTHON=$(abspath $(BIN)/python) agent/build.sh

ci:
	bash .ci/run

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
