#!/usr/bin/env bash
# Makes sure a Docker engine with Compose v2 and buildx answers on this machine.
#
# Idempotent: when `docker info` already answers and compose v2 is present, it does nothing
# and never touches the configuration of a running engine. On a bare Debian 12 machine it
# installs the engine from Debian's packages, Compose v2 and buildx from Debian trixie (bookworm
# only packages Compose v1), starts `dockerd` in the background and waits for it with a deadline.
# Run by hand from the repo root: `bash ci/provision-engine.sh`.
set -euo pipefail

log() { printf 'provision-engine: %s\n' "$*" >&2; }
die() { printf 'provision-engine: error: %s\n' "$*" >&2; exit 1; }

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEADLINE=${ENGINE_START_DEADLINE:-90}
TRIXIE_DIR=${TRIXIE_APT_DIR:-/var/cache/release-gate/trixie-apt}

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }
compose_v2_present() { timeout 10 docker compose version >/dev/null 2>&1; }
buildx_present() { timeout 10 docker buildx version >/dev/null 2>&1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if engine_answers && compose_v2_present && buildx_present; then
  log "engine, compose v2 and buildx already answer; nothing to do"
  exit 0
fi

# 1. The engine itself, from Debian's packages.
if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io from Debian"
  as_root apt-get update -qq || die "apt-get update failed (is a Debian mirror reachable?)"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    docker.io iptables ca-certificates >/dev/null \
    || die "installing docker.io failed (see apt-get output above)"
fi

# 2. Compose v2 and buildx: trixie's packages are the v2 CLI plugins and depend only on libc.
#    Their apt state lives apart from the system's so bookworm's sources stay untouched.
if ! compose_v2_present || ! buildx_present; then
  log "installing docker-compose (v2) and docker-buildx from Debian trixie"
  as_root mkdir -p "$TRIXIE_DIR/lists/partial" "$TRIXIE_DIR/cache/archives/partial" "$TRIXIE_DIR/debs"
  echo "deb $MIRROR trixie main" | as_root tee "$TRIXIE_DIR/sources.list" >/dev/null
  apt_trixie=(-o "Dir::Etc::SourceList=$TRIXIE_DIR/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$TRIXIE_DIR/lists" -o "Dir::Cache=$TRIXIE_DIR/cache"
    -o "Dir::State::Status=/dev/null" -o "Debug::NoLocking=1")
  as_root apt-get "${apt_trixie[@]}" update -qq || die "apt-get update of the trixie list failed"
  (cd "$TRIXIE_DIR/debs" && as_root apt-get "${apt_trixie[@]}" download docker-compose docker-buildx) \
    || die "downloading docker-compose/docker-buildx from trixie failed"
  as_root dpkg -i "$TRIXIE_DIR"/debs/docker-compose_*.deb "$TRIXIE_DIR"/debs/docker-buildx_*.deb >/dev/null \
    || die "dpkg -i of the trixie compose/buildx packages failed"
fi

# 3. Start the daemon unless one already answers (never reconfigure a running engine).
if ! engine_answers; then
  pidfile=/var/run/docker.pid
  if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    log "removing stale $pidfile left by an uncleanly stopped dockerd"
    as_root rm -f "$pidfile"
  fi
  stale=/var/run/docker/containerd/containerd.pid
  if [ -f "$stale" ] && ! kill -0 "$(cat "$stale")" 2>/dev/null; then as_root rm -f "$stale"; fi
  log "starting dockerd in the background (log: /var/log/dockerd.log)"
  as_root sh -c 'nohup dockerd >>/var/log/dockerd.log 2>&1 &'
  start=$(date +%s)
  until engine_answers; do
    if [ $(( $(date +%s) - start )) -ge "$DEADLINE" ]; then
      tail -n 20 /var/log/dockerd.log >&2 || true
      die "dockerd did not answer \`docker info\` within ${DEADLINE}s (last log lines above)"
    fi
    sleep 1
  done
fi

compose_v2_present || die "\`docker compose version\` does not answer after installation"
buildx_present || die "\`docker buildx version\` does not answer after installation"
log "ready: engine $(docker version --format '{{.Server.Version}}'), $(docker compose version --short | sed 's/^/compose /')"
