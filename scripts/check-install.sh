#!/usr/bin/env bash
# Install Clarion the way a deploy does, into a fresh venv, and start every command.
#   pip install -r requirements.lock && pip install --no-deps .   (no dev extras, not editable)
# Run from a temporary directory so the installed package, not this checkout, is imported.
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$PWD
python="${PYTHON:-python3}"

work="$(mktemp -d "${TMPDIR:-/tmp}/clarion-check-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT
step() { echo "check-install: $*"; }

# Build from a copy: an in-tree build would leave build/ behind, and concurrent builds collide.
mkdir "$work/src"
tar -C "$checkout" --exclude=__pycache__ -cf - pyproject.toml app mailers workers migrations \
  templates | tar -C "$work/src" -xf -

# Installs come from a wheelhouse of the locked files, so a repeat run needs no index; the hashes
# in the lock still check every file. It is filled (from pip's cache) only when a file is missing.
wheels="${CLARION_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/clarion/wheels}"
mkdir -p "$wheels"
pip() {  # the checkout's pip, quiet, without the warnings this machine's extra local indexes add
  "$checkout/.venv/bin/python" -m pip --quiet --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}
offline=(--no-index --find-links "$wheels" --no-compile)

step "fresh venv, requirements.lock, then the package without dependencies"
"$python" -m venv --without-pip "$work/venv"
target=(--python "$work/venv/bin/python")
if ! pip "${target[@]}" install "${offline[@]}" --require-hashes -r requirements.lock \
  >"$work/offline.log"; then
  step "filling the wheelhouse $wheels"
  pip download --require-hashes --no-deps -r requirements.lock -d "$wheels"
  # What `pip install .` and the sdists among the locked files need to build.
  pip download --no-deps -d "$wheels" "setuptools>=68" wheel
  pip "${target[@]}" install "${offline[@]}" --require-hashes -r requirements.lock
fi
pip "${target[@]}" install "${offline[@]}" --no-deps "$work/src"
pip "${target[@]}" check

# A clean environment: nothing from the caller's shell (DATABASE_URL, REDIS_URL…) leaks in, and
# nothing is written inside site-packages.
mkdir -p "$work/run/imports" "$work/run/mailbox"
run() {
  (cd "$work/run" && env -i PATH="$work/venv/bin:/usr/bin:/bin" HOME="$work/run" \
    DATABASE_URL="sqlite:///$work/run/clarion.db" IMPORT_DIR="$work/run/imports" \
    CAPTURE_DIR="$work/run/mailbox" "$@")
}

step "the package comes from site-packages, with its templates, static files and migrations"
run python - <<'PY'
from pathlib import Path

import app
from app.config import PROJECT_ROOT

where = Path(app.__file__).resolve().parent
assert "site-packages" in where.parts, f"imported from {where}, not the installed package"
for needed in (
    where / "templates" / "base.html",
    where / "static" / "clarion.css",
    PROJECT_ROOT / "migrations" / "env.py",
    PROJECT_ROOT / "migrations" / "alembic.ini",
    PROJECT_ROOT / "templates" / "emails",
):
    assert needed.exists(), f"{needed} is not installed"
PY
step "clarion --help";          run clarion --help >/dev/null
step "clarion db upgrade";      run clarion db upgrade 2>&1 | tail -1
step "clarion worker --help";   run clarion worker --help >/dev/null
step "create_app()";            run python -c "from app import create_app; create_app()"
step "ok"
