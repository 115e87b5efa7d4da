#!/usr/bin/env bash
# Run web, worker and the SMTP capture together in the foreground; Ctrl-C stops all three.
# `make run` prepares the database and Redis first; this script only starts the processes.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=".venv/bin"
port="${PORT:-5000}"
capture_host="${MAILCAPTURE_HOST:-127.0.0.1}"
capture_port="${MAILCAPTURE_PORT:-1025}"
base_url="http://127.0.0.1:${port}"

# A local run must never reach a real relay: mail always goes to the capture process.
export SMTP_URL="smtp://${capture_host}:${capture_port}"
export BASE_URL="${BASE_URL:-$base_url}"
export MAILCAPTURE_HOST="$capture_host" MAILCAPTURE_PORT="$capture_port"
export PYTHONUNBUFFERED=1

mkdir -p var

# Reuse the token from an earlier run while the database still knows it.
token_file="var/dev-token"
token=""
if [ -s "$token_file" ]; then
  token="$(cat "$token_file")"
  if ! "$bin/clarion" tokens list | awk -F'\t' '$4 == "active" {print $2}' \
    | grep -qF "${token:0:10}"; then
    token=""
  fi
fi
if [ -z "$token" ]; then
  # The command's stderr says "store it now"; this script stores it, so only show a failure.
  errors="$(mktemp)"
  if ! token="$("$bin/clarion" tokens create --name local-dev --role admin 2>"$errors")"; then
    cat "$errors" >&2; rm -f "$errors"; exit 1
  fi
  rm -f "$errors"
  (umask 077 && printf '%s\n' "$token" >"$token_file")
fi

# A first admin for the staff app, created once; its password is kept beside the token.
login_file="var/dev-login"
admin_email="${CLARION_ADMIN_EMAIL:-admin@clarion.localhost}"
if ! "$bin/clarion" users list | awk -F'\t' '{print $2}' | grep -qxF "$admin_email"; then
  errors="$(mktemp)"
  if ! password="$("$bin/clarion" users create "$admin_email" --role admin --name "Local admin" \
    --password generate 2>"$errors")"; then
    cat "$errors" >&2; rm -f "$errors"; exit 1
  fi
  rm -f "$errors"
  (umask 077 && printf '%s\n%s\n' "$admin_email" "$password" >"$login_file")
fi
if [ -s "$login_file" ]; then
  login_line="$(sed -n 1p "$login_file")  password $(sed -n 2p "$login_file")   (admin; kept in ${login_file})"
else
  login_line="${admin_email} (its password is not on file: clarion users set-password ${admin_email})"
fi

pids=()
names=()
start() {  # start NAME COMMAND...: run in the background with its output prefixed by NAME
  local name=$1; shift
  "$@" > >(sed -u "s/^/$(printf '%-11s' "$name")| /") 2>&1 &
  pids+=("$!")
  names+=("$name")
}

stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
}
# Ctrl-C reaches the children too, so one may exit before the trap runs: remember the request
# and let the code after `wait` tell a requested stop from a crash.
stopping=""
trap 'stopping=1' INT TERM

start mailcapture "$bin/python" -m workers.mailcapture --host "$capture_host" --port "$capture_port"
start web "$bin/gunicorn" --bind "127.0.0.1:${port}" --workers 2 --threads 4 \
  --access-logfile - 'app:create_app()'
start worker "$bin/clarion" worker

# Print where to go once the web process answers, so it is not lost among start-up lines.
for _ in $(seq 1 60); do
  [ -z "$stopping" ] || break
  if "$bin/python" -c "import urllib.request as u; u.urlopen('${base_url}/healthz', timeout=1)" \
    2>/dev/null; then
    break
  fi
  sleep 0.5
done
[ -n "$stopping" ] || cat <<EOF

  Clarion is running.
    Staff app       ${base_url}/staff/login
    Sign in as      ${login_line}
    Captured mail   ${base_url}/dev/mailbox   (SMTP capture on ${capture_host}:${capture_port})
    API docs        ${base_url}/api/v1/docs
    API token       ${token}   (admin; kept in ${token_file})
    Try             curl -H 'Authorization: Bearer ${token}' ${base_url}/api/v1/openapi.json
  Press Ctrl-C to stop.

EOF

# When any one process exits the others are stopped too, so a crash is never half-hidden.
status=0
exited=""
while [ -z "$stopping" ] && [ -z "$exited" ]; do
  wait -n -p exited "${pids[@]}" || status=$?
done
if [ -n "$stopping" ]; then
  echo "Stopping…" >&2
  status=0
else
  for i in "${!pids[@]}"; do
    if [ "${pids[$i]}" = "$exited" ]; then
      echo "${names[$i]} exited with status ${status}; stopping the others." >&2
    fi
  done
  [ "$status" -ne 0 ] || status=1  # nothing here is meant to finish on its own
fi
stop_all
exit "$status"
