#!/usr/bin/env bash
# Install Debian packages without ever prompting; `apt-get update` runs at most once an hour.
# Usage: scripts/apt-install.sh PACKAGE...
set -euo pipefail
[ "$#" -gt 0 ] || exit 0

export DEBIAN_FRONTEND=noninteractive
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "apt-install: need root (or sudo) to install: $*" >&2; exit 1; }
  sudo="sudo -E"
fi

# Several scripts may need packages in one `make` run: share one index refresh between them.
stamp="${TMPDIR:-/tmp}/clarion-apt-updated"
if [ -z "$(find "$stamp" -mmin -60 2>/dev/null)" ]; then
  echo "apt-install: apt-get update" >&2
  $sudo apt-get update -qq
  touch "$stamp"
fi

for pkg in "$@"; do
  if [ "$pkg" = postfix ]; then
    # Only smtp-sink is wanted: keep postfix unconfigured so it never starts a mail server.
    printf '%s\n' \
      "postfix postfix/main_mailer_type select No configuration" \
      "postfix postfix/mailname string clarion.localhost" | $sudo debconf-set-selections
  fi
done

echo "apt-install: installing $*" >&2
$sudo apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" </dev/null
