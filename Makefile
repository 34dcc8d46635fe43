# pumasi: `make run` installs and starts the demo; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_URL ?= $(or $(PUMASI_TEST_DATABASE_URL),postgres://postgres@127.0.0.1:5432/pumasi)
PYTEST_ARGS ?=

.PHONY: run install test test-tools lint test-sqlite test-postgres test-browser bench demo worker clean

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "pumasi needs Python 3.11 or newer"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9 || $(BIN)/python -m pip install -q uv
	VIRTUAL_ENV=$(VENV) $(BIN)/uv pip sync -q requirements.lock
	VIRTUAL_ENV=$(VENV) $(BIN)/uv pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/pumasi migrate --noinput -v0
	$(BIN)/pumasi collectstatic --noinput -v0
	$(BIN)/pumasi demo
	@# The demo alley's sensors move (a day in 24 min) while the server runs; stopped with it.
	$(BIN)/pumasi simulate parking --zone siheung-126 --speed 60 --via http --forever >"$${PUMASI_VAR_DIR:-var}/simulate.log" 2>&1 & \
	  sim=$$!; trap 'kill $$sim 2>/dev/null' EXIT INT TERM; $(BIN)/pumasi run

demo: $(STAMP)
	$(BIN)/pumasi migrate --noinput -v0
	$(BIN)/pumasi demo

worker: $(STAMP)
	$(BIN)/pumasi worker

# Debian chromium for the browser tests and axe-core (npm) for the accessibility check.
test-tools:
	@bash scripts/ensure-test-tools.sh

lint: $(STAMP)
	$(BIN)/ruff check pumasi bench conftest.py
	$(BIN)/python manage.py makemigrations --check --dry-run

test-sqlite: $(STAMP)
	env -u PUMASI_DATABASE_URL -u PUMASI_REDIS_URL $(BIN)/pytest -m "not browser" $(PYTEST_ARGS)

test-postgres: $(STAMP)
	@bash scripts/postgres-or-skip.sh "$(PG_URL)" && \
	  PUMASI_DATABASE_URL="$(PG_URL)" $(BIN)/pytest -m "not browser" $(PYTEST_ARGS) || \
	  { rc=$$?; [ $$rc -eq 42 ] && echo "PostgreSQL not reachable: skipped its run (set CI=true to require it)." || exit $$rc; }

test-browser: $(STAMP) test-tools
	env -u PUMASI_DATABASE_URL -u PUMASI_REDIS_URL $(BIN)/pytest -m browser $(PYTEST_ARGS)

test: $(STAMP) test-tools lint test-sqlite test-postgres test-browser
	@echo "make test: all suites passed"

# bench/serving drives the server with wrk (Debian package); installed here when missing and root.
bench: $(STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && { apt-get install -y -q wrk >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }; }; } || \
	  echo "bench/serving needs wrk: sudo apt-get install wrk"
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules var/test-*.sqlite3*
