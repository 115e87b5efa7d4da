#!/usr/bin/env bash
# Regenerate requirements.lock (runtime) and requirements-dev.lock (runtime + dev) from the ranges
# in pyproject.toml with pip-compile, then stamp each with a digest of those ranges so `make
# check-lock` can tell offline when pyproject.toml has changed since.
# Usage: scripts/lock.sh                       keep every existing pin that still fits (make lock)
#        scripts/lock.sh --upgrade             move every pin to the newest fitting release
#        scripts/lock.sh --upgrade-package X   move only X (repeatable)
set -euo pipefail
cd "$(dirname "$0")/.."

bin=.venv/bin
export CUSTOM_COMPILE_COMMAND="make lock"
# No index or find-links lines: a lock must not carry this machine's pip configuration.
# --allow-unsafe pins setuptools/pip too when a dependency needs them; hash-checked installs
# refuse an unpinned requirement.
options=(--quiet --generate-hashes --strip-extras --allow-unsafe
  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host "$@")

"$bin/pip-compile" "${options[@]}" -o requirements.lock pyproject.toml
# The dev lock is constrained by the runtime lock: tests run on exactly what a deploy installs.
"$bin/pip-compile" "${options[@]}" --extra dev -c requirements.lock \
  -o requirements-dev.lock pyproject.toml
"$bin/python" scripts/check_lock.py --stamp
