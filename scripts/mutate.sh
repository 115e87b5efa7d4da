#!/usr/bin/env bash
# Mutation testing of Clarion's core modules (not in CI): `make mutate` or scripts/mutate.sh [MODULE…]
#
# IMPORTANT: mutmut edits the module it mutates in place. This script therefore copies the
# checkout to a private temporary directory and runs mutmut THERE, never in the working tree:
# other processes (a dev server, another test run) import these modules and would see mutants,
# and an edit made to the file during a run would be lost when mutmut restores it.
#
# Each module is mutated against its own tests only, with mutmut 2.5 from .venv, one module at a
# time, under `nice -n 10`. With no argument the four modules nobody is editing right now are run;
# name modules to run others (mailers/message.py and app/supporters/csvformat.py are being edited
# by other engineers: only run them when that work has landed, e.g.
#   scripts/mutate.sh mailers/message.py app/supporters/csvformat.py).
# Modules whose tests need no database run with --noconftest and without pytest's plugin
# autoload (schemathesis, hypothesis and faker cost ~3 s of CPU per start; xdist is loaded by
# hand for -n 0): a mutant costs ~1 s instead of ~10. The others use tests/conftest.py with
# TEST_RUN_ID=mut and Redis db 12 (a database is created and migrated for each mutant).
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
PYTEST="env TEST_RUN_ID=mut TEST_REDIS_DB_OFFSET=12 $PY -m pytest -n 0 -x -q -p no:cacheprovider"
NO_DB="--noconftest"
BARE="env PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 TEST_RUN_ID=mut TEST_REDIS_DB_OFFSET=12 $PY -m pytest -p xdist.plugin -n 0 -x -q -p no:cacheprovider"

# module -> "pytest options and test files" (its own tests; the fastest killers first).
declare -A TESTS=(
  [app/links/tokens.py]="$NO_DB tests/tracking/test_tokens_golden.py tests/tracking/test_tokens.py"
  [mailers/merge.py]="$NO_DB tests/mailers/test_merge_sandbox.py tests/mailers/test_merge.py"
  [app/tracking/machine.py]="$NO_DB tests/tracking/test_machine_rules.py tests/tracking/test_machine.py"
  # test_throttle.py's two-process test needs the conftest (a database) and 3 s of real time;
  # the arithmetic file covers the same module with Redis only.
  [app/mailings/delivery/throttle.py]="$NO_DB tests/mailings/test_throttle_arithmetic.py"
  [mailers/message.py]="tests/mailers/test_message_golden.py tests/mailers/test_message.py tests/mailers/test_qp_body.py"
  [app/supporters/csvformat.py]="tests/supporters/test_csvformat.py tests/supporters/test_import.py tests/supporters/test_export.py"
)
DEFAULT=(app/links/tokens.py mailers/merge.py app/tracking/machine.py app/mailings/delivery/throttle.py)
MODULES=("$@")
[ ${#MODULES[@]} -eq 0 ] && MODULES=("${DEFAULT[@]}")

# The copy must be what the tests import (the editable install points at $ROOT).
"$PY" -c "import app, mailers, sys; assert app.__file__.startswith('$WORK'), app.__file__"

summary=()
for module in "${MODULES[@]}"; do
  tests=${TESTS[$module]:-}
  runner=$PYTEST
  [[ $tests == "$NO_DB "* ]] && runner=$BARE
  if [ -z "$tests" ]; then
    echo "no tests configured for $module (one of: ${!TESTS[*]})" >&2
    exit 2
  fi
  rm -f .mutmut-cache
  echo "== $module: $runner $tests"
  status=0
  nice -n 10 "$MUTMUT" run --paths-to-mutate "$module" --tests-dir tests \
    --runner "$runner $tests" --no-progress --simple-output || status=$?
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
