#!/usr/bin/env bash
# Builds the images of the bundled reference stack once, so that the gate tests that run in
# parallel afterwards find them warm instead of all building them at the same time.
#
# Passes the host's CA bundle to the builds as an optional BuildKit secret (BUILD_CA_BUNDLE)
# for networks behind a TLS-intercepting proxy; it is never stored in an image layer.
# Run by hand from the repo root: `bash ci/build-images.sh`.
set -euo pipefail

STACK=fixtures/azionelab
if [ -z "${BUILD_CA_BUNDLE:-}" ] && [ -s /etc/ssl/certs/ca-certificates.crt ]; then
  export BUILD_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
fi

docker compose --project-name release-gate-build \
  --env-file "$STACK/.env.example" \
  -f "$STACK/infra/docker/compose.yml" -f "$STACK/infra/docker/compose.test.yml" \
  build
