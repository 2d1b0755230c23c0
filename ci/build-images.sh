#!/usr/bin/env bash
# Builds the images of the bundled example stacks once (the reference stack, multienv's app
# and infra projects, stage), so that the gate tests that run in parallel afterwards find them
# warm instead of all building them at the same time.
#
# Passes the host's CA bundle to the builds as an optional BuildKit secret (BUILD_CA_BUNDLE)
# for networks behind a TLS-intercepting proxy; it is never stored in an image layer.
# Run by hand from the repo root: `bash ci/build-images.sh`.
set -euo pipefail

if [ -z "${BUILD_CA_BUNDLE:-}" ] && [ -s /etc/ssl/certs/ca-certificates.crt ]; then
  export BUILD_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
fi

build() {
  local env_file=$1; shift
  local args=()
  for file in "$@"; do args+=(-f "$file"); done
  echo "build-images: $*" >&2
  docker compose --project-name release-gate-build --env-file "$env_file" "${args[@]}" build
}

ref=fixtures/azionelab
build "$ref/.env.example" "$ref/infra/docker/compose.yml" "$ref/infra/docker/compose.test.yml"
multi=fixtures/multienv
build "$multi/.env.example" "$multi/infra/compose.yml"
build "$multi/.env.example" "$multi/app/compose.yml" "$multi/app/compose.test.yml"
stage=fixtures/stage
build "$stage/.env.example" "$stage/compose.yml" "$stage/compose.test.yml"
