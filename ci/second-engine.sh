#!/usr/bin/env bash
# Starts or stops a second Docker engine beside the machine's own, to gate a stack on an engine
# that is not the default one (integration/tests/it/remote.rs; README.md, "A remote engine").
# Root only. Run by hand from the repo root:
#   bash ci/second-engine.sh start DIR [WATCH_PID]   prints DOCKER_HOST=... and ENGINE_ADDR=...
#   bash ci/second-engine.sh stop DIR                 removes everything start made; idempotent
#
# It shares nothing with the first engine: its own socket, data root, exec root (and so its
# own containerd), pidfile and config file, its own bridge instead of `docker0`, and an
# address pool of its own. The bridge's address stands in for a remote engine host's address:
# it is not loopback, and nothing outside this machine routes to it.
# `--iptables=false`: a second dockerd managing iptables would remove and recreate the DOCKER
# chains that the first engine's published ports live in. Its ports are published through
# docker-proxy instead, and one FORWARD rule (tagged with DIR) lets its containers reach each
# other across its bridges, which the first engine's FORWARD policy (DROP) would refuse.
# With WATCH_PID, a watchdog in its own session runs `stop` when that process ends, even when
# it is killed (a nextest timeout), so the engine never outlives its test.
set -euo pipefail

die() { printf 'second-engine: error: %s\n' "$*" >&2; exit 2; }
[ $# -ge 2 ] || die "usage: bash ci/second-engine.sh start DIR [WATCH_PID] | stop DIR"
cmd=$1
self=$(realpath "$0")
dir=$(realpath -m "$2")
watch=${3:-}
case "$dir" in /tmp/?*) ;; *) die "DIR must be under /tmp (it is removed by \`stop\`): $dir" ;; esac

# Names derived from DIR: two instances never share a bridge, a pool or a rule.
hash=$(printf '%s' "$dir" | md5sum | cut -c1-8)
bridge="smk$hash"
octet=$((16#${hash:0:2}))
addr="10.213.$octet.1"
pool="10.$((220 + octet % 30)).0.0/16"
tag="smoke-second-engine $dir"
sock="$dir/docker.sock"

rule() { iptables "$1" FORWARD -s "$pool" -d "$pool" -m comment --comment "$tag" -j ACCEPT; }

stop() {
  if [ -f "$dir/watchdog.pid" ]; then
    w=$(cat "$dir/watchdog.pid")
    if [ "$w" != "$$" ] && [ "$w" != "${BASHPID:-}" ]; then kill "$w" 2>/dev/null || true; fi
  fi
  if [ -S "$sock" ] && DOCKER_HOST="unix://$sock" timeout 10 docker info >/dev/null 2>&1; then
    # A test that failed half-way may have left a stack: remove it with the engine's own API.
    mapfile -t ids < <(DOCKER_HOST="unix://$sock" docker ps -aq)
    if [ "${#ids[@]}" -gt 0 ]; then DOCKER_HOST="unix://$sock" docker rm -f "${ids[@]}" >/dev/null || true; fi
    DOCKER_HOST="unix://$sock" docker network prune -f >/dev/null 2>&1 || true
  fi
  if [ -f "$dir/docker.pid" ]; then
    pid=$(cat "$dir/docker.pid")
    if kill -TERM "$pid" 2>/dev/null; then
      timeout 30 tail --pid="$pid" -f /dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # What a killed dockerd leaves: its containerd and shims, named by their paths under DIR.
  for p in /proc/[0-9]*; do
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "$dir/"; then
      kill -KILL "${p#/proc/}" 2>/dev/null || true
    fi
  done
  awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  while rule -D 2>/dev/null; do :; done
  ip link del "$bridge" 2>/dev/null || true
  rm -rf "$dir"
}

start() {
  [ "$(id -u)" -eq 0 ] || die "a second dockerd needs root (bridge, mounts, FORWARD rule)"
  command -v dockerd >/dev/null || die "no dockerd on PATH (bash ci/provision-engine.sh)"
  [ ! -e "$dir" ] || die "$dir exists: stop it first (bash ci/second-engine.sh stop $dir)"
  mkdir -p "$dir" && chmod 0700 "$dir"
  echo '{}' >"$dir/daemon.json"
  if [ -n "$watch" ]; then
    setsid bash -c 'tail --pid="$1" -f /dev/null; exec bash "$2" stop "$3"' _ "$watch" "$self" "$dir" \
      </dev/null >/dev/null 2>&1 &
    echo $! >"$dir/watchdog.pid"
  fi
  ip link add "$bridge" type bridge
  ip addr add "$addr/24" dev "$bridge"
  ip link set "$bridge" up
  rule -I
  setsid dockerd --config-file "$dir/daemon.json" --host "unix://$sock" \
    --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/docker.pid" \
    --bridge "$bridge" --default-address-pool "base=$pool,size=24" \
    --iptables=false --ip-masq=false --ip-forward=false --log-level warn \
    </dev/null >"$dir/dockerd.log" 2>&1 &
  deadline=$((SECONDS + 60))
  until DOCKER_HOST="unix://$sock" docker version --format '{{.Server.Version}}' >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 20 "$dir/dockerd.log" >&2 || true
      stop
      die "the second dockerd did not answer within 60s (its last log lines above)"
    fi
    sleep 0.2
  done
  printf 'DOCKER_HOST=unix://%s\nENGINE_ADDR=%s\n' "$sock" "$addr"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) die "unknown command \`$cmd\` (start or stop)" ;;
esac
