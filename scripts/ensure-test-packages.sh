#!/usr/bin/env bash
# Install the system packages the test suite (or, with `bench`, the benchmarks) need, if missing.
# Usage: scripts/ensure-test-packages.sh [bench]
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
need() {  # need PACKAGE COMMAND-OR-PATH
  if [[ $2 == /* ]]; then [ -x "$2" ] || missing+=("$1")
  else command -v "$2" >/dev/null || missing+=("$1")
  fi
}

if [ "${1:-}" = bench ]; then
  need postfix /usr/sbin/smtp-sink  # a fast SMTP sink to send against
  need wrk /usr/bin/wrk            # HTTP load generator
else
  need spamassassin spamassassin   # spam scoring of rendered mailings
  need chromium /usr/bin/chromium  # browser tests (Playwright drives the system Chromium)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  scripts/apt-install.sh "${missing[@]}"
fi
