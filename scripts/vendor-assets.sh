#!/usr/bin/env bash
# Install the staff app's front-end packages from package-lock.json (npm ci: exactly the locked,
# integrity-checked versions) and copy the files the pages load into app/static/vendor/, which
# is not committed. Without npm the staff pages still work; only their live parts wait for a reload.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null; then
  if [ "${CLARION_REQUIRE_ASSETS:-}" = 1 ]; then
    scripts/apt-install.sh nodejs npm
  else
    echo "vendor-assets: npm not found; staff pages will work without live updates." >&2
    exit 0
  fi
fi
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
mkdir -p app/static/vendor
cp node_modules/htmx.org/dist/htmx.min.js app/static/vendor/htmx.min.js
