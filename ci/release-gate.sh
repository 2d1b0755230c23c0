#!/usr/bin/env bash
# Gates this commit and, only when the gate is green, creates the release: pushes the verified
# images to the release registry, creates the annotated tag vVERSION (its message records
# each image's ID, its registry digest REPO@sha256:..., and the gate's report summary) and the
# local image tags REPO:VERSION. Builds the images once, gates exactly those
# (`smoke gate --no-build`), and refuses to tag if an image changed meanwhile. Builds the
# release's `smoke` once (ci/release-smoke.sh), runs the gate with it, and pushes its image
# (release-gate/smoke) with the others: post-deploy smoke runs that binary.
#
# Refuses, creating nothing, when the gate is red, the work tree has uncommitted changes, or
# the tag or an image tag already exists. Extra gate arguments follow `--`, e.g.
#   bash ci/release-gate.sh 0.2.0 -- --override fixtures/broken/x/compose.override.yml
# What to build and tag comes from the gate itself (`smoke gate STACK GATE_ARGS --plan=...`):
# the compose files of the stack and of its `[infra_project]`, and every image of a service
# that is not test-only, in both projects.
# Exit: 0 released; 2 refused (usage, dirty tree, tag exists, no RELEASE_REGISTRY, a gate
# file the gate cannot plan); 6 the registry does not answer or a push failed (checked before
# building, and nothing is tagged); otherwise the gate's own code (1 a check failed, 3 never
# ready, 4 the stack or smoke failed to build or start, 5 this machine cannot run a gate,
# 130 interrupted).
# Environment: RELEASE_REGISTRY (HOST[:PORT], required) and optional RELEASE_REGISTRY_USER /
# RELEASE_REGISTRY_PASSWORD (see ci/lib/registry.sh); SMOKE_BIN (the `smoke` that plans and
# gates; default the release's own build); RELEASE_SMOKE_BIN (see ci/release-smoke.sh);
# RELEASE_STACK (default fixtures/azionelab), RELEASE_REPORT_DIR (default target/gate-release/VERSION).
# Run by hand from the repo root: `bash ci/release-gate.sh 0.2.0`.
set -euo pipefail
cd "$(dirname "$0")/.."

SCRIPT=release-gate
log() { printf 'release-gate: %s\n' "$*" >&2; }
die() { printf 'release-gate: error: %s\nrelease-gate: nothing was tagged.\n' "$1" >&2; exit "${2:-1}"; }
refuse() { printf 'release-gate: refused: %s\nrelease-gate: nothing was tagged.\n' "$*" >&2; exit 2; }

version=${1:-}
[ -n "$version" ] || refuse "usage: ci/release-gate.sh VERSION [-- GATE_ARGS...]"
shift
if [ "${1:-}" = "--" ]; then shift; fi
gate_args=("$@")
# A Docker tag and a git tag at once: digits, then an optional pre-release (no `+`).
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z][0-9A-Za-z.-]*)?$ ]] \
  || refuse "\`$version\` is not a version like 1.2.3 or 1.2.3-rc.1"
tag="v$version"
stack=${RELEASE_STACK:-fixtures/azionelab}
report_dir=${RELEASE_REPORT_DIR:-target/gate-release/$version}
# Absolute, so that nothing depends on which folder the gate resolves a relative path from.
case $report_dir in /*) ;; *) report_dir="$PWD/$report_dir" ;; esac

# 1. Preconditions: a clean tree (the tag must name exactly what was gated) and a new tag.
dirty=$(git status --porcelain)
[ -z "$dirty" ] || refuse "the work tree has uncommitted changes (commit or stash them first):
$dirty"
if git rev-parse -q --verify "refs/tags/$tag" >/dev/null; then
  refuse "the tag \`$tag\` already exists (on $(git rev-parse --short "$tag^{commit}")); pick a new version"
fi
commit=$(git rev-parse HEAD)
[ -n "${RELEASE_REGISTRY:-}" ] || refuse "set RELEASE_REGISTRY to the registry's HOST[:PORT] (the images of a release are pushed there; \`bash ci/provision-registry.sh\` starts one on loopback)"
# shellcheck source=ci/lib/registry.sh
source ci/lib/registry.sh
registry_open "$RELEASE_REGISTRY"
if docker image inspect "release-gate/smoke:$version" >/dev/null 2>&1; then
  refuse "the image tag \`release-gate/smoke:$version\` already exists; pick a new version"
fi
released=no
# Until the tag exists, the smoke image of this version is not a release either.
cleanup() {
  registry_cleanup
  [ "$released" = yes ] || docker image rm "release-gate/smoke:$version" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# 2. The release's smoke, built once: it plans and runs the gate, and it is what ships.
status=0
smoke_artifact=$(bash ci/release-smoke.sh "$version") || status=$?
[ "$status" -eq 0 ] || { log "FAILED: smoke did not build (above); nothing was tagged"; exit "$status"; }
if [ -n "${SMOKE_BIN:-}" ]; then smoke=("$SMOKE_BIN"); else smoke=("$PWD/$smoke_artifact"); fi

#    The compose file sets and the images to release, as the gate plans them from the stack's
#    gate.toml with the overrides among the gate arguments.
plan() {
  local status=0
  "${smoke[@]}" gate "$stack" "${gate_args[@]}" --plan="$1" || status=$?
  [ "$status" -eq 0 ] || log "\`smoke gate $stack ${gate_args[*]} --plan=$1\` exited $status"
  return "$status"
}
plan_failed() {
  if [ "$1" -eq 5 ]; then
    log "FAILED: this machine cannot read the compose files (above); nothing was tagged"
    exit 5
  fi
  refuse "the gate cannot plan \`$stack\` (above): fix its gate.toml or the gate arguments"
}
compose_text=$(plan compose-args) || plan_failed $?
infra_text=$(plan infra-compose-args) || plan_failed $?
images_text=$(plan images) || plan_failed $?
# Built under the project names the gate builds under: compose stamps the name into each image,
# so another name would give other images than the ones a gate of this stack builds and runs.
build_project=$(plan build-project) || plan_failed $?
infra_build_project=$(plan infra-build-project) || plan_failed $?
mapfile -t compose <<<"$compose_text"
infra=()
[ -z "$infra_text" ] || mapfile -t infra <<<"$infra_text"
images=()
[ -z "$images_text" ] || mapfile -t images <<<"$images_text"
dc() { docker compose --project-name "$build_project" "${compose[@]}" "$@"; }
dc_infra() { docker compose --project-name "$infra_build_project" "${infra[@]}" "$@"; }
[ "${#images[@]}" -gt 0 ] || refuse "the stack names no images to release"
for image in "${images[@]}"; do
  if docker image inspect "${image%:*}:$version" >/dev/null 2>&1; then
    refuse "the image tag \`${image%:*}:$version\` already exists; pick a new version"
  fi
done

# 3. Build once, record what was built, then gate exactly those images.
if [ -z "${BUILD_CA_BUNDLE:-}" ] && [ -s /etc/ssl/certs/ca-certificates.crt ]; then
  export BUILD_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
fi
if [ "${#infra[@]}" -gt 0 ]; then
  log "building the images of $stack's infrastructure project"
  dc_infra build >&2 || { log "FAILED: the infrastructure images did not build; nothing was tagged"; exit 4; }
fi
log "building the images of $stack"
dc build >&2 || { log "FAILED: the images did not build; nothing was tagged"; exit 4; }
declare -A built
for image in "${images[@]}"; do built[$image]=$(docker image inspect --format '{{.Id}}' "$image"); done

mkdir -p "$report_dir"
log "gating $commit ($tag) with: smoke gate $stack --no-build ${gate_args[*]}"
status=0
"${smoke[@]}" gate "$stack" --no-build --runs-dir "$PWD/target/gate-release/runs" \
  --report-json "$report_dir/report.json" --report-junit "$report_dir/junit.xml" \
  --report-markdown "$report_dir/report.md" "${gate_args[@]}" || status=$?
if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$report_dir/report.md" ]; then
  cat "$report_dir/report.md" >>"$GITHUB_STEP_SUMMARY"
fi
if [ "$status" -ne 0 ]; then
  log "FAILED: the gate exited $status; no tag and no image tag were created (reports in $report_dir)"
  exit "$status"
fi

# 4. Green: the images must still be the ones gated, then tag them and the commit.
for image in "${images[@]}"; do
  now=$(docker image inspect --format '{{.Id}}' "$image")
  [ "$now" = "${built[$image]}" ] || refuse "\`$image\` changed while the gate ran (was ${built[$image]}, now $now); run again"
done
created=()
undo() { for t in "${created[@]}" "release-gate/smoke:$version"; do docker image rm "$t" >/dev/null 2>&1 || true; done; }
for image in "${images[@]}"; do
  docker tag "${built[$image]}" "${image%:*}:$version" || { undo; refuse "docker tag of \`$image\` failed"; }
  created+=("${image%:*}:$version")
done

# 5. The registry: every verified image and the smoke image, by digest, before the git tag.
log "pushing ${#images[@]} images and release-gate/smoke to $REGISTRY"
push_start=$SECONDS
digests=()
for image in "${images[@]}" "release-gate/smoke:$version"; do
  status=0
  line=$(registry_push "${built[$image]:-$image}" "${image%:*}" "$version") || status=$?
  [ "$status" -eq 0 ] || { undo; log "FAILED: no tag was created"; exit "$status"; }
  digests+=("$line")
done
log "pushed in $((SECONDS - push_start))s: ${digests[*]}"

annotation="$report_dir/tag-message.txt"
{
  printf 'Release %s\n\nGate: PASSED on commit %s (%s)\n\n' "$version" "$commit" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf 'Verified images (docker image inspect --format {{.Id}}), tagged :%s:\n' "$version"
  for image in "${images[@]}"; do printf '  %s=%s\n' "${image%:*}:$version" "${built[$image]}"; done
  printf '\n'
  printf '%s\n' "${digests[@]}" | registry_block
  printf '\nSmoke binary (attached to the release): %s sha256:%s\n' \
    "$(basename "$smoke_artifact")" "$(cut -d' ' -f1 "$smoke_artifact.sha256")"
  printf '\nGate report:\n\n'
  if [ -f "$report_dir/report.md" ]; then cat "$report_dir/report.md"; else echo "(no Markdown report)"; fi
} >"$annotation"
ident=()
git config user.email >/dev/null || ident=(-c user.name=release-gate -c user.email=release-gate@localhost)
git "${ident[@]}" tag -a "$tag" -F "$annotation" "$commit" || { undo; refuse "git tag $tag failed"; }

released=yes
log "PASSED: created $tag on $commit and the image tags ${created[*]}, pushed to $REGISTRY"
log "push the tag with: git push origin $tag"
