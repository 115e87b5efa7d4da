# Clarion's developer commands. `make run` and `make test` are the two you need; CI runs `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_ADMIN_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
PYTEST_ARGS ?=

.PHONY: help setup run test bench lint format migrate clean

help:
	@echo "make run      set up and run Clarion locally (web + worker + SMTP capture, demo data, SQLite)"
	@echo "make test     set up and run the whole test suite on PostgreSQL and Redis"
	@echo "make bench    run the benchmarks in bench/"
	@echo "make lint     ruff check and format check"
	@echo "make format   apply ruff fixes and formatting"
	@echo "make migrate  apply database migrations (DATABASE_URL, default var/clarion.db)"
	@echo "make setup    create .venv and install Clarion with its dev dependencies"
	@echo "make clean    remove caches and build leftovers (keeps .venv and var/)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependencies may have changed, so repeated runs start at once.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

setup: $(STAMP)

run: setup
	mkdir -p var
	$(BIN)/clarion db upgrade
	$(BIN)/clarion demo load
	scripts/ensure-services.sh redis
	scripts/run-local.sh

test: setup
	scripts/ensure-test-packages.sh
	scripts/ensure-services.sh postgres redis
	$(BIN)/ruff check .
	TEST_PG_ADMIN_URL=$(PG_ADMIN_URL) $(BIN)/pytest -n 2 -p no:cacheprovider $(PYTEST_ARGS)

bench: setup
	scripts/ensure-test-packages.sh bench
	scripts/ensure-services.sh postgres redis
	@shopt -s nullglob; benches=(bench/bench_*.py); \
	[ $${#benches[@]} -gt 0 ] || echo "No bench/bench_*.py yet."; \
	for f in "$${benches[@]}"; do \
		echo "== $$f"; $(BIN)/python "$$f" || exit $$?; \
	done

lint: setup
	$(BIN)/ruff check .
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
