#!/usr/bin/env bash
# Stand-in "hosts" for Clarion's workers: network namespaces clarion-w1..N, each joined to this
# machine by a veth pair on one bridge (a small LAN), with no route anywhere else. This
# machine's PostgreSQL and Redis listen on 127.0.0.1 only, which a namespace cannot reach; they
# are not reconfigured (a restart would cut off everyone else using them): a socat forwarder
# per service listens on the bridge address instead and connects to 127.0.0.1.
#
# Usage: bench/netns_hosts.sh up [COUNT]   create COUNT namespaces (default 2) and forwarders
#        bench/netns_hosts.sh down         remove everything `up` made; safe to run at any time
# Needs root. Addresses come from 198.18.0.0/15, the range set aside for benchmarks (RFC 2544):
# this machine is 198.18.0.1 on the bridge, namespace i is 198.18.0.(10+i).
set -euo pipefail
cd "$(dirname "$0")/.."

HOST_ADDR=198.18.0.1
BRIDGE=clarion-br0
STATE=/run/clarion-netns
FORWARDED_PORTS=("${BENCH_PG_PORT:-5432}" "${BENCH_REDIS_PORT:-6379}")

ensure_packages() {
  local missing=()
  command -v ip >/dev/null || missing+=(iproute2)
  command -v socat >/dev/null || missing+=(socat)
  if [ "${#missing[@]}" -gt 0 ]; then scripts/apt-install.sh "${missing[@]}"; fi
}

stop_pid() {  # stop_pid PID: a forwarder we started, with the children serving its connections
  local pid=$1 child
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q '^socat ' || return 0
  for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do kill "$child" 2>/dev/null || true; done
  kill "$pid" 2>/dev/null || true
}

down() {
  set +e
  if [ -f "$STATE/forwarders" ]; then
    while read -r pid; do stop_pid "$pid"; done <"$STATE/forwarders"
  fi
  for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^clarion-w[0-9]+$/ {print $1}'); do
    # A worker left running by a bench that was killed holds the namespace: end it first.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null; done
    ip netns del "$ns"
  done
  # Deleting a namespace frees its veth pair only later, asynchronously: delete ours now.
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2)} $2 ~ /^clarion-h[0-9]+$/ {print $2}'); do
    ip link del "$link"
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
  rm -rf "$STATE"
  set -e
}

up() {
  local count=${1:-2} i ns port
  [ "$(id -u)" -eq 0 ] || { echo "netns_hosts: needs root (ip netns)" >&2; exit 1; }
  ensure_packages
  down  # whatever a killed run left behind
  trap 'down' ERR
  mkdir -p "$STATE"
  ip link add "$BRIDGE" type bridge
  ip addr add "$HOST_ADDR/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for i in $(seq 1 "$count"); do
    ns="clarion-w$i"
    ip netns add "$ns"
    ip link add "clarion-h$i" type veth peer name eth0 netns "$ns"
    ip link set "clarion-h$i" master "$BRIDGE" up
    ip -n "$ns" addr add "198.18.0.$((10 + i))/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
  done
  for port in "${FORWARDED_PORTS[@]}"; do
    # Detached from our output, or whoever reads it would wait for the forwarder to exit.
    socat "TCP-LISTEN:$port,bind=$HOST_ADDR,reuseaddr,fork" "TCP:127.0.0.1:$port" \
      </dev/null >/dev/null 2>&1 &
    echo $! >>"$STATE/forwarders"
  done
  for port in "${FORWARDED_PORTS[@]}"; do
    for _ in $(seq 1 50); do
      if ip netns exec clarion-w1 bash -c "exec 3<>/dev/tcp/$HOST_ADDR/$port" 2>/dev/null; then
        continue 2
      fi
      sleep 0.1
    done
    echo "netns_hosts: the forwarder for port $port did not answer" >&2
    down
    exit 1
  done
  trap - ERR
}

case "${1:-}" in
  up) up "${2:-2}" ;;
  down) down ;;
  *) echo "usage: $0 up [COUNT] | down" >&2; exit 2 ;;
esac
