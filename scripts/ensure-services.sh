#!/usr/bin/env bash
# Make sure PostgreSQL and/or Redis answer on 127.0.0.1, installing and starting them if needed.
# Usage: scripts/ensure-services.sh [postgres] [redis]   (both when no argument is given)
set -euo pipefail
cd "$(dirname "$0")/.."

wanted=("$@")
[ "${#wanted[@]}" -gt 0 ] || wanted=(postgres redis)

wait_for() {  # wait_for NAME COMMAND...: poll for up to 30 s
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "ensure-services: $name did not become ready on 127.0.0.1" >&2
  return 1
}

pg_ready() { pg_isready -q -h 127.0.0.1; }
redis_ready() { [ "$(redis-cli -h 127.0.0.1 ping 2>/dev/null)" = PONG ]; }

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null || ! command -v pg_isready >/dev/null \
    || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    scripts/apt-install.sh postgresql
    # A fresh Debian cluster asks for passwords over TCP; tests connect as postgres without one.
    hba="/etc/postgresql/$(ls /etc/postgresql)/main/pg_hba.conf"
    sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  if ! pg_ready; then
    echo "ensure-services: starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start || true
  fi
  wait_for PostgreSQL pg_ready
}

ensure_redis() {
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    scripts/apt-install.sh redis-server
  fi
  if ! redis_ready; then
    echo "ensure-services: starting Redis" >&2
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
  fi
  wait_for Redis redis_ready
}

for service in "${wanted[@]}"; do
  case "$service" in
    postgres) ensure_postgres ;;
    redis) ensure_redis ;;
    *) echo "ensure-services: unknown service '$service' (postgres, redis)" >&2; exit 2 ;;
  esac
done
