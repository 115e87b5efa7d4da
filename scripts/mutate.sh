#!/usr/bin/env bash
# Mutation testing of Clarion's core modules (not in CI): `make mutate` or scripts/mutate.sh [MODULE…]
#
# IMPORTANT: mutmut edits the module it mutates in place. This script therefore copies the
# checkout to a private temporary directory and runs mutmut THERE, never in the working tree:
# other processes (a dev server, another test run) import these modules and would see mutants,
# and an edit made to the file during a run would be lost when mutmut restores it.
#
# Each module is mutated against its own tests only, with mutmut 2.5 from .venv, one module at a
# time, under `nice -n 10`. With no argument every module in the table is run; name modules to
# run only those, e.g. `scripts/mutate.sh mailers/message.py app/supporters/csvformat.py`.
# Tests that need no database run without tests/conftest.py (--noconftest, or --confcutdir to keep
# a directory's own conftest) and without pytest's plugin autoload (schemathesis, hypothesis and
# faker cost ~3 s of CPU per start; xdist is loaded by hand for -n 0): a mutant costs ~1 s
# instead of ~10. Tests that need the database use tests/conftest.py, which creates and migrates
# a database for each mutant; a module can have both, the database tests running only when the
# fast ones passed. That database and Redis db are named by TEST_RUN_ID and TEST_REDIS_DB_OFFSET
# (default "mut" and 12), so give a run its own when other test runs share the machine:
#   TEST_RUN_ID=mut2 TEST_REDIS_DB_OFFSET=13 scripts/mutate.sh app/supporters/csvformat.py
#
# Prints killed/survived/timeout per module, the score (killed+timeout over all mutants) and the
# diff of every survivor. Equivalent mutants (cannot change behaviour) are listed in
# tests/MUTATION.md; subtract them when judging the score.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d /tmp/clarion-mutate.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
tar --exclude=./.venv --exclude=./var --exclude=./.git -cf - . | tar -C "$WORK" -xf -
cd "$WORK"
echo "mutating in $WORK (a copy of $ROOT)"

PY="$ROOT/.venv/bin/python"
MUTMUT="$ROOT/.venv/bin/mutmut"
RUN_ENV="TEST_RUN_ID=${TEST_RUN_ID:-mut} TEST_REDIS_DB_OFFSET=${TEST_REDIS_DB_OFFSET:-12}"
PYTEST="env $RUN_ENV $PY -m pytest -n 0 -x -q -p no:cacheprovider"
NO_DB="--noconftest"
MAILERS_ONLY="--confcutdir=tests/mailers"  # tests/mailers/conftest.py only: no database
BARE="env PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 $RUN_ENV $PY -m pytest -p xdist.plugin -n 0 -x -q -p no:cacheprovider"

# module -> "pytest options and test files" (its own tests; the fastest killers first).
declare -A TESTS=(
  [app/links/tokens.py]="$NO_DB tests/tracking/test_tokens_golden.py tests/tracking/test_tokens.py"
  [mailers/merge.py]="$NO_DB tests/mailers/test_merge_sandbox.py tests/mailers/test_merge.py"
  [app/tracking/machine.py]="$NO_DB tests/tracking/test_machine_rules.py tests/tracking/test_machine.py"
  # test_throttle.py's two-process test needs the conftest (a database) and 3 s of real time;
  # the arithmetic file covers the same module with Redis only.
  [app/mailings/delivery/throttle.py]="$NO_DB tests/mailings/delivery/test_throttle_arithmetic.py"
  [mailers/message.py]="$MAILERS_ONLY tests/mailers/test_message_edges.py tests/mailers/test_message_golden.py
    tests/mailers/test_message.py tests/mailers/test_qp_body.py
    tests/mailers/test_dkim.py::test_signed_message_verifies"
  [app/supporters/csvformat.py]="$NO_DB tests/supporters/test_csvformat_edges.py tests/supporters/test_csvformat.py
    tests/supporters/test_csvcount.py"
  [app/supporters/csvcount.py]="$NO_DB tests/supporters/test_csvcount.py tests/supporters/test_csvformat_edges.py"
  [app/supporters/csvcells.py]="$NO_DB tests/supporters/test_csvformat_edges.py tests/supporters/test_csvformat.py"
)
# module -> tests needing the database, run (with the conftest) only when the fast ones pass.
# The importer's real-RQ-worker test is left out: 5 s a mutant for the queueing, not the parsing.
declare -A DB_TESTS=(
  [app/supporters/csvformat.py]="-m 'not integration' tests/supporters/test_import.py tests/supporters/test_export.py"
  [app/supporters/csvcells.py]="-m 'not integration' tests/supporters/test_import.py tests/supporters/test_import_staging.py tests/supporters/test_export.py"
)
DEFAULT=(app/links/tokens.py mailers/merge.py app/tracking/machine.py app/mailings/delivery/throttle.py
  mailers/message.py app/supporters/csvformat.py app/supporters/csvcells.py)
MODULES=("$@")
[ ${#MODULES[@]} -eq 0 ] && MODULES=("${DEFAULT[@]}")

# The copy must be what the tests import (the editable install points at $ROOT).
"$PY" -c "import app, mailers, sys; assert app.__file__.startswith('$WORK'), app.__file__"

summary=()
for module in "${MODULES[@]}"; do
  tests=${TESTS[$module]:-}
  if [ -z "$tests" ]; then
    echo "no tests configured for $module (one of: ${!TESTS[*]})" >&2
    exit 2
  fi
  runner="$PYTEST $tests"
  [[ $tests == "$NO_DB "* || $tests == "$MAILERS_ONLY "* ]] && runner="$BARE $tests"
  # mutmut splits the runner like a shell would but runs no shell: bash joins the two stages.
  [ -n "${DB_TESTS[$module]:-}" ] && runner="bash -c \"$runner && $PYTEST ${DB_TESTS[$module]}\""
  rm -f .mutmut-cache
  echo "== $module: $runner"
  status=0
  nice -n 10 "$MUTMUT" run --paths-to-mutate "$module" --tests-dir tests \
    --runner "$runner" --no-progress --simple-output || status=$?
  if [ $((status & 1)) -ne 0 ]; then
    echo "mutmut failed on $module (exit $status); is the unmutated run green?" >&2
    exit 1
  fi
  counts=$("$PY" - <<'EOF'
import sqlite3
rows = dict(sqlite3.connect(".mutmut-cache").execute(
    "select status, count(*) from Mutant group by status"))
killed, survived = rows.get("ok_killed", 0), rows.get("bad_survived", 0)
timeout, suspicious = rows.get("bad_timeout", 0), rows.get("ok_suspicious", 0)
total = sum(rows.values())
score = 100.0 * (killed + timeout + suspicious) / total if total else 0.0
print(f"killed={killed} survived={survived} timeout={timeout} suspicious={suspicious} "
      f"total={total} score={score:.1f}%")
EOF
)
  echo "-- survivors of $module:"
  for id in $("$PY" -c "import sqlite3; print(*[r[0] for r in sqlite3.connect('.mutmut-cache').execute(\"select id from Mutant where status='bad_survived' order by id\")])"); do
    "$MUTMUT" show "$id"
  done
  # mutmut restores each mutant itself; make sure nothing of one is left in the copy either.
  cmp -s "$module" "$ROOT/$module" || echo "WARNING: $module differs from $ROOT after the run" >&2
  summary+=("$module: $counts")
done

echo "== mutation scores"
printf '%s\n' "${summary[@]}"
