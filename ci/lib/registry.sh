# shellcheck shell=bash
# Shared by ci/release-gate.sh, ci/deploy.sh and ci/rollback.sh (sourced, not run): the
# release registry. Images reach a compose host only through it, by digest.
#
# Configuration (environment):
#   RELEASE_REGISTRY           HOST[:PORT] of the registry (release: required; deploy and
#                              rollback: overrides the one recorded in the release tag)
#   RELEASE_REGISTRY_USER      optional credentials; used through `docker login
#   RELEASE_REGISTRY_PASSWORD  --password-stdin` into a throwaway DOCKER_CONFIG, never
#                              written anywhere that outlives the script, masked in output
#   RELEASE_REGISTRY_SCHEME    http or https for the reachability probe (default: http on
#                              loopback, where the engine allows plain HTTP, https elsewhere)
#
# Exit codes of the scripts that source it (documented in ci/README.md):
EXIT_REGISTRY_DOWN=6      # the registry does not answer, or refuses the credentials
EXIT_DIGEST_MISSING=7     # the registry answers but has no manifest for a release digest

# The tag-message lines this file writes and reads: `Registry: HOST[:PORT]`, then one
# `  REPO@sha256:HEX` per image, before the gate's report.
REGISTRY_HEADER="Registry digests (ci/deploy.sh pulls these and nothing else):"

declare -F log >/dev/null || log() { printf '%s: %s\n' "${SCRIPT:-registry}" "$*" >&2; }
declare -F die >/dev/null || die() { printf '%s: error: %s\n' "${SCRIPT:-registry}" "$*" >&2; exit "${2:-1}"; }

REGISTRY=""
REGISTRY_CONFIG=""

# Replaces the registry password in text read on stdin.
registry_mask() {
  local text
  text=$(cat)
  if [ -n "${RELEASE_REGISTRY_PASSWORD:-}" ]; then text=${text//"$RELEASE_REGISTRY_PASSWORD"/***}; fi
  printf '%s\n' "$text"
}

# docker with the throwaway credentials (when there are any); everything else uses the
# caller's own configuration, and so its compose and buildx plugins.
registry_docker() {
  if [ -n "$REGISTRY_CONFIG" ]; then DOCKER_CONFIG=$REGISTRY_CONFIG docker "$@"; else docker "$@"; fi
}

# Removes the throwaway login (nothing of the credentials outlives the script).
registry_cleanup() {
  if [ -n "$REGISTRY_CONFIG" ]; then rm -rf "$REGISTRY_CONFIG"; fi
}

# Sets REGISTRY to ADDRESS, checks that it answers (exit 6 otherwise, before anything is
# changed) and logs in when credentials are set.
registry_open() {
  local address=$1 scheme code
  [[ $address =~ ^[A-Za-z0-9.-]+(:[0-9]+)?$ ]] \
    || die "the registry address \`$address\` is not HOST[:PORT] (set RELEASE_REGISTRY)" 2
  REGISTRY=$address
  case $address in 127.*|localhost|localhost:*) scheme=http ;; *) scheme=https ;; esac
  scheme=${RELEASE_REGISTRY_SCHEME:-$scheme}
  # Any HTTP answer from /v2/ (200, or 401 asking for credentials) means a registry is there.
  code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$scheme://$address/v2/" 2>/dev/null) || code=000
  if [ "$code" = 000 ]; then
    die "the registry $address does not answer ($scheme://$address/v2/): nothing was changed (check RELEASE_REGISTRY and that the registry is up)" "$EXIT_REGISTRY_DOWN"
  fi
  if [ -n "${RELEASE_REGISTRY_USER:-}" ]; then
    [ -n "${RELEASE_REGISTRY_PASSWORD:-}" ] || die "RELEASE_REGISTRY_USER is set but RELEASE_REGISTRY_PASSWORD is not" 2
    REGISTRY_CONFIG=$(mktemp -d "${TMPDIR:-/tmp}/registry-login.XXXXXX")
    # A caller with an EXIT trap of its own calls registry_cleanup from it.
    trap registry_cleanup EXIT
    # The throwaway config still finds a plugin installed under the user's own one.
    if [ -d "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins" ]; then
      ln -s "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins" "$REGISTRY_CONFIG/cli-plugins"
    fi
    local out
    out=$(printf '%s' "$RELEASE_REGISTRY_PASSWORD" \
      | registry_docker login --username "$RELEASE_REGISTRY_USER" --password-stdin "$address" 2>&1) \
      || die "the registry $address refused the login of \`$RELEASE_REGISTRY_USER\`: $(registry_mask <<<"$out"): nothing was changed" "$EXIT_REGISTRY_DOWN"
  elif [ "$code" = 401 ]; then
    log "the registry $address asks for credentials and RELEASE_REGISTRY_USER is not set; trying without"
  fi
}

# Pushes the local image SOURCE as $REGISTRY/REPO:VERSION and prints `REPO@sha256:HEX`, the
# reference relative to the registry that the tag message records. The registry tag stays in
# the registry; the local one is removed again.
registry_push() {
  local source=$1 repo=$2 version=$3 target out digest
  target="$REGISTRY/$repo:$version"
  docker tag "$source" "$target" || die "docker tag $source $target failed"
  if ! out=$(registry_docker push "$target" 2>&1); then
    docker image rm "$target" >/dev/null 2>&1 || true
    die "pushing $target failed: $(registry_mask <<<"$out" | tail -n 3)" "$EXIT_REGISTRY_DOWN"
  fi
  digest=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$target" \
    | grep -m1 "^$REGISTRY/$repo@sha256:" || true)
  docker image rm "$target" >/dev/null 2>&1 || true
  [ -n "$digest" ] || die "the push of $target recorded no registry digest" "$EXIT_REGISTRY_DOWN"
  echo "$repo@${digest#*@}"
}

# The `Registry:` line and digest block of a tag message, given REPO@sha256:HEX lines on stdin.
registry_block() {
  printf 'Registry: %s\n%s\n' "$REGISTRY" "$REGISTRY_HEADER"
  sed 's/^/  /'
}

# Prints the release tag's message: vVERSION in DEPLOY_TAGS_REPO (default this checkout).
release_message() {
  local version=$1 repo=${DEPLOY_TAGS_REPO:-.}
  [ "$(git -C "$repo" cat-file -t "v$version" 2>/dev/null)" = tag ] \
    || die "there is no annotated release tag v$version in $repo (fetch it: git fetch origin tag v$version; releases are made by ci/release-gate.sh)" 2
  git -C "$repo" tag -l --format='%(contents)' "v$version"
}

# From a release tag message on stdin: the registry recorded (`registry`) or the digest of
# REPO (`digest REPO`: `REPO@sha256:HEX`), read only above the gate's report (mawk: no `{64}`).
release_field() {
  awk -v what="$1" -v repo="${2:-}" '
    /^Gate report:/ { exit }
    what == "registry" && /^Registry: / { print $2; exit }
    what == "digest" && index($1, repo "@sha256:") == 1 && $1 ~ /@sha256:[0-9a-f]+$/ \
      && length($1) == length(repo) + 8 + 64 { print $1; exit }
  '
}

# Pulls $REGISTRY/REF (REF is REPO@sha256:HEX) and prints the local image ID. A registry
# that does not answer exits 6, a digest it does not have exits 7.
registry_pull() {
  local ref="$REGISTRY/$1" out
  if ! out=$(registry_docker pull --quiet "$ref" 2>&1); then
    out=$(registry_mask <<<"$out")
    if grep -qiE 'manifest unknown|not found|name unknown' <<<"$out"; then
      die "the registry $REGISTRY has no image $1 (the release records this digest, but it was never pushed there or has been deleted): $out" "$EXIT_DIGEST_MISSING"
    fi
    die "pulling $ref failed, the registry does not answer: $out" "$EXIT_REGISTRY_DOWN"
  fi
  docker image inspect --format '{{.Id}}' "$ref"
}
