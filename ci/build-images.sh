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

# Under the project name `smoke gate` builds each stack with (`smokegate-build-<name>`, and
# `-infra` for an infrastructure project; smoke/src/gate/stack.rs): compose stamps the project
# name into the images, so the gate then finds these same images instead of re-labelling them
# and leaving these ones dangling.
build() {
  local project=$1 env_file=$2; shift 2
  local args=()
  for file in "$@"; do args+=(-f "$file"); done
  echo "build-images: $project: $*" >&2
  docker compose --project-name "$project" --env-file "$env_file" "${args[@]}" build
  # Services that share one `image:` each build it with their own labels and one gets the tag;
  # a changed build replaces the previous images. What this project left untagged goes, as
  # `smoke gate` does after its builds (an image a container uses is kept).
  docker image prune --force --filter "label=com.docker.compose.project=$project" >/dev/null
}

ref=fixtures/azionelab
build smokegate-build-azionelab "$ref/.env.example" "$ref/infra/docker/compose.yml" "$ref/infra/docker/compose.test.yml"
multi=fixtures/multienv
build smokegate-build-multienv-infra "$multi/.env.example" "$multi/infra/compose.yml"
build smokegate-build-multienv "$multi/.env.example" "$multi/app/compose.yml" "$multi/app/compose.test.yml"
stage=fixtures/stage
build smokegate-build-stage "$stage/.env.example" "$stage/compose.yml" "$stage/compose.test.yml"
