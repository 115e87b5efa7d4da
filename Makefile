# Clarion's developer commands. `make run` and `make test` are the two you need; CI runs `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_ADMIN_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
PYTEST_ARGS ?=

BENCH_PG_ADMIN_URL ?= $(PG_ADMIN_URL)
export BENCH_PG_ADMIN_URL

.PHONY: help setup run test bench bench-smoke check-deps check-lock lock upgrade lint format \
	migrate clean

help:
	@echo "make run      set up and run Clarion locally (web + worker + SMTP capture, demo data, SQLite)"
	@echo "make test     set up and run the whole test suite on PostgreSQL and Redis"
	@echo "make bench    run the benchmarks in bench/ (bench-smoke: the same at small sizes)"
	@echo "make lock     regenerate requirements*.lock after changing pyproject.toml"
	@echo "make upgrade  move every pin in the lock files to the newest release that fits"
	@echo "make lint     ruff check, import layers (lint-imports) and format check"
	@echo "make format   apply ruff fixes and formatting"
	@echo "make migrate  apply database migrations (DATABASE_URL, default var/clarion.db)"
	@echo "make setup    create .venv and install Clarion with its dev dependencies"
	@echo "make clean    remove caches and build leftovers (keeps .venv and var/)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependencies may have changed, so repeated runs start at once. The
# pinned, hash-checked dev lock first, then Clarion itself without resolving anything again.
$(STAMP): requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# The staff app's front-end packages (htmx), from package-lock.json into app/static/vendor.
ASSETS := app/static/vendor/htmx.min.js
$(ASSETS): package-lock.json
	scripts/vendor-assets.sh

setup: $(STAMP) $(ASSETS)

run: setup
	mkdir -p var
	$(BIN)/clarion db upgrade
	$(BIN)/clarion demo load
	scripts/ensure-services.sh redis
	scripts/run-local.sh

test: export CLARION_REQUIRE_ASSETS = 1
test: setup
	scripts/ensure-test-packages.sh test bench
	scripts/ensure-services.sh postgres redis
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	@$(MAKE) --no-print-directory check-lock check-deps
	TEST_PG_ADMIN_URL=$(PG_ADMIN_URL) $(BIN)/pytest -n 2 -p no:cacheprovider $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory bench-smoke

# The lock files still match pyproject.toml (offline: a digest of the ranges plus the pins).
check-lock: setup
	$(BIN)/python scripts/check_lock.py

# Imports and declared dependencies agree, and a production install (no dev extras) starts.
check-deps: setup
	$(BIN)/deptry app mailers workers
	scripts/check-install.sh

lock: setup
	scripts/lock.sh

upgrade: setup
	scripts/lock.sh --upgrade

bench: setup
	scripts/ensure-test-packages.sh bench
	scripts/ensure-services.sh postgres redis
	scripts/run-benches.sh

# Every benchmark at small sizes, on its own databases and Redis db, so it runs beside pytest.
bench-smoke: setup
	scripts/ensure-test-packages.sh bench
	scripts/ensure-services.sh postgres redis
	scripts/run-benches.sh --quick

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: setup
	mkdir -p var
	$(BIN)/clarion db upgrade

clean:
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache build test-artifacts bench/out
