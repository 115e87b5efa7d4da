#!/usr/bin/env bash
# Install the system packages the test suite and/or the benchmarks need, if missing, in one go.
# Usage: scripts/ensure-test-packages.sh [test] [bench]   (test when no argument is given)
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
need() {  # need PACKAGE COMMAND-OR-PATH
  if [[ $2 == /* ]]; then [ -x "$2" ] || missing+=("$1")
  else command -v "$2" >/dev/null || missing+=("$1")
  fi
}

groups=("$@")
[ "${#groups[@]}" -gt 0 ] || groups=(test)
for group in "${groups[@]}"; do
  case "$group" in
    test)
      need spamassassin spamassassin   # spam scoring of rendered mailings
      need chromium /usr/bin/chromium  # browser tests (Playwright drives the system Chromium)
      ;;
    bench)
      need postfix /usr/sbin/smtp-sink  # a fast SMTP sink to send against
      need wrk /usr/bin/wrk            # HTTP load generator
      ;;
    *) echo "ensure-test-packages: unknown group '$group' (test, bench)" >&2; exit 2 ;;
  esac
done

if [ "${#missing[@]}" -gt 0 ]; then
  scripts/apt-install.sh "${missing[@]}"
fi
