#!/usr/bin/env bash
# Makes sure every base image the fixtures build `FROM` exists in the local engine.
#
# Idempotent and quick when the images are present. For each missing image it first tries a
# pull (a machine with a registry); where no registry answers it builds `debian:bookworm-slim`
# from Debian's packages with debootstrap and `docker import`s it.
# Run by hand from the repo root: `bash ci/base-images.sh`.
set -euo pipefail

log() { printf 'base-images: %s\n' "$*" >&2; }
die() { printf 'base-images: error: %s\n' "$*" >&2; exit 1; }

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_IMAGES=(debian:bookworm-slim)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

timeout 10 docker info >/dev/null 2>&1 || die "no Docker engine answers (run \`bash ci/provision-engine.sh\` first)"

debootstrap_image() {
  local ref=$1 suite=${1#debian:}
  suite=${suite%-slim}
  command -v debootstrap >/dev/null 2>&1 || {
    log "installing debootstrap"
    as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq debootstrap >/dev/null \
      || die "installing debootstrap failed"
  }
  local root
  root=$(mktemp -d /tmp/base-image.XXXXXX)
  trap 'as_root rm -rf "$root"' RETURN
  log "building $ref with debootstrap ($suite from $MIRROR)"
  as_root debootstrap --variant=minbase "$suite" "$root" "$MIRROR" >/tmp/base-image-debootstrap.log 2>&1 \
    || { tail -n 20 /tmp/base-image-debootstrap.log >&2; die "debootstrap of $suite failed (log above)"; }
  as_root rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  as_root tar -C "$root" -c . | docker import \
    --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$ref" >/dev/null || die "docker import of $ref failed"
}

for ref in "${BASE_IMAGES[@]}"; do
  if docker image inspect "$ref" >/dev/null 2>&1; then
    log "$ref present"
    continue
  fi
  if timeout 60 docker pull -q "$ref" >/dev/null 2>&1; then
    log "$ref pulled"
    continue
  fi
  log "$ref cannot be pulled (no registry answers)"
  debootstrap_image "$ref"
  log "$ref built"
done
