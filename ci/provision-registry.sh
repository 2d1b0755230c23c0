#!/usr/bin/env bash
# Makes sure an image registry answers on loopback for the release tests and a local release,
# and prints its address (`127.0.0.1:PORT`) on stdout: Debian's `docker-registry` (the CNCF
# distribution registry), started as a background process with its own config file and
# storage folder (no systemd: the package's service, which requires htpasswd auth, is never
# used). The engine pushes to and pulls from 127.0.0.0/8 over plain HTTP with no daemon change.
#
# Idempotent: when the registry it started before still answers, it only prints the address.
# It prefers port 5000 and takes a free loopback port when 5000 is in use by something else.
# Production does not use this: there the registry's address is RELEASE_REGISTRY.
# Options: --no-install (the tests: never apt-get; exit 5 when the package is missing).
# Environment: TEST_REGISTRY_DIR (config, storage, log, address; default /tmp/release-gate-registry-UID),
# TEST_REGISTRY_DEADLINE (seconds to wait for it to answer, default 30).
# Run by hand from the repo root: `bash ci/provision-registry.sh`.
set -euo pipefail

log() { printf 'provision-registry: %s\n' "$*" >&2; }
die() { printf 'provision-registry: error: %s\n' "$*" >&2; exit "${2:-1}"; }

install=yes
[ "${1:-}" != "--no-install" ] || install=no
dir=${TEST_REGISTRY_DIR:-/tmp/release-gate-registry-$(id -u)}
deadline=${TEST_REGISTRY_DEADLINE:-30}
mkdir -p "$dir/storage"

answers() { curl -fsS --max-time 3 -o /dev/null "http://$1/v2/" 2>/dev/null; }

if ! command -v docker-registry >/dev/null 2>&1; then
  [ "$install" = yes ] || die "Debian's \`docker-registry\` is not installed (run \`bash ci/provision-test-tools.sh\`)" 5
  log "installing docker-registry from Debian"
  if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
  "${SUDO[@]}" apt-get update -qq || die "apt-get update failed (is a Debian mirror reachable?)"
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends docker-registry >/dev/null \
    || die "installing docker-registry failed (see apt-get output above)"
fi

# One start at a time: tests running in parallel all ask for the registry at once.
exec 9>"$dir/lock"
flock 9

if [ -s "$dir/address" ] && answers "$(cat "$dir/address")"; then
  cat "$dir/address"
  exit 0
fi

port=5000
if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
address="127.0.0.1:$port"
cat >"$dir/config.yml" <<EOF
# Written by ci/provision-registry.sh: a loopback registry for release tests, no auth.
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: $address
EOF
log "starting docker-registry on $address (storage $dir/storage, log $dir/registry.log)"
setsid nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null 9>&- &
echo $! >"$dir/pid"
start=$SECONDS
until answers "$address"; do
  if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    tail -n 20 "$dir/registry.log" >&2
    die "docker-registry exited while starting (its log is above)"
  fi
  [ $((SECONDS - start)) -lt "$deadline" ] || die "docker-registry did not answer on $address within ${deadline}s (log: $dir/registry.log)"
  sleep 0.2
done
echo "$address" >"$dir/address"
echo "$address"
