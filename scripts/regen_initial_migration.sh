#!/usr/bin/env bash
# Regenerate migrations/versions/0001_initial_schema.py from the models.
# Only while nothing has been released: once a database exists in the wild, add migrations instead.
set -euo pipefail
cd "$(dirname "$0")/.."
db="clarion_regen_$$"
psql -q -h 127.0.0.1 -U postgres -c "create database $db" >/dev/null
trap 'psql -q -h 127.0.0.1 -U postgres -c "drop database if exists $db" >/dev/null' EXIT
rm -f migrations/versions/*.py
DATABASE_URL="postgresql://postgres@127.0.0.1/$db" .venv/bin/clarion db migrate -m "initial schema" --rev-id 0001 >/dev/null 2>&1
mv migrations/versions/0001_initial_schema.py migrations/versions/0001_initial_schema.py 2>/dev/null || true
ls migrations/versions
