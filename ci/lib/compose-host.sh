# shellcheck shell=bash
# Shared by ci/deploy.sh and ci/rollback.sh (sourced, not run): the compose command of the
# deployed stack, the deploy state folder, and the smoke run against the live site.
#
# Configuration (environment):
#   DEPLOY_PROJECT        compose project name (default azionelab)
#   DEPLOY_COMPOSE_FILES  compose files, space-separated (default the reference stack's)
#   DEPLOY_ENV_FILE       env file with the site's configuration (default fixtures/azionelab/.env)
#   DEPLOY_SERVICES       services whose image is pinned to the release version (default
#                         "nginx backend"; the database image changes only by its own procedure)
#   DEPLOY_STATE_DIR      deploy state and backups (default /var/lib/azionelab-deploy)
#   DEPLOY_URL            the site's base URL for the smoke checks; `auto` derives it (and the
#                         CA certificate, MailDev URL and the backend's PUBLIC_SITE_URL) from a
#                         test stack's ephemeral ports
#   DEPLOY_STACK          the stack folder whose gate.toml declares the one-shot commands run
#                         in the started release: its operations (not its fixture data) and
#                         its staff account (default fixtures/azionelab)
#   SMOKE_STAFF_TOKEN     kept in sync on the smoke staff user (the gate file's `[staff]`
#   SMOKE_STAFF_PASSWORD  command), and its password when set (the admin sign-in check)
#   DEPLOY_TAGS_REPO      the git repository holding the release tags vVERSION, whose
#                         messages record the registry digests (default this checkout)
#   RELEASE_REGISTRY      the registry to pull from, HOST[:PORT] (default the one the release
#                         tag records); RELEASE_REGISTRY_USER / RELEASE_REGISTRY_PASSWORD when
#                         it needs credentials (see ci/lib/registry.sh)
#   SMOKE_BIN             a built `smoke` (default: the release's own, from its smoke image;
#                         for a release without one, `cargo run -q -p smoke --`)

log() { printf '%s: %s\n' "$SCRIPT" "$*" >&2; }
die() { printf '%s: error: %s\n' "$SCRIPT" "$1" >&2; exit "${2:-1}"; }
# shellcheck source=ci/lib/registry.sh
source ci/lib/registry.sh

PROJECT=${DEPLOY_PROJECT:-azionelab}
read -r -a COMPOSE_FILES <<<"${DEPLOY_COMPOSE_FILES:-fixtures/azionelab/infra/docker/compose.yml}"
ENV_FILE=${DEPLOY_ENV_FILE:-fixtures/azionelab/.env}
read -r -a SERVICES <<<"${DEPLOY_SERVICES:-nginx backend}"
STATE=${DEPLOY_STATE_DIR:-/var/lib/azionelab-deploy}
STACK=${DEPLOY_STACK:-fixtures/azionelab}
if [ -n "${SMOKE_BIN:-}" ]; then SMOKE=("$SMOKE_BIN"); else SMOKE=(cargo run -q -p smoke --); fi
mkdir -p "$STATE/releases" "$STATE/backups"
[ -f "$ENV_FILE" ] || die "the env file \`$ENV_FILE\` does not exist (set DEPLOY_ENV_FILE)" 2

compose_args=(--project-name "$PROJECT" --env-file "$ENV_FILE")
for file in "${COMPOSE_FILES[@]}"; do compose_args+=(-f "$file"); done

# The compose command with the release override of VERSION on top (images pinned to it).
dc_release() {
  local version=$1; shift
  docker compose "${compose_args[@]}" -f "$STATE/releases/$version/images.yml" "$@"
}
dc() { docker compose "${compose_args[@]}" "$@"; }

# Fetches release VERSION before anything changes: reads the registry digests from its
# release tag, pulls every deployed service's image by digest (exit 6 when the registry does
# not answer, 7 when it lacks a digest: nothing has been stopped or changed yet), takes the
# release's own `smoke` out of its smoke image, and writes the release override pinning each
# service to its digest with `pull_policy: never` (compose never pulls or builds on the host).
fetch_release() {
  local version=$1 dir="$STATE/releases/$1" message recorded config service image repo ref start
  message=$(release_message "$version") || exit $?
  recorded=$(release_field registry <<<"$message")
  [ -n "${RELEASE_REGISTRY:-$recorded}" ] \
    || die "the tag v$version records no registry and RELEASE_REGISTRY is not set (was it made by ci/release-gate.sh?)" 2
  registry_open "${RELEASE_REGISTRY:-$recorded}"
  mkdir -p "$dir"
  config=$(dc config --format json) || die "\`docker compose config\` failed for the stack" 2
  start=$SECONDS
  local pins=()
  for service in "${SERVICES[@]}"; do
    image=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["services"][sys.argv[1]]["image"])' "$service" <<<"$config") \
      || die "the stack has no service \`$service\` with an image (set DEPLOY_SERVICES)" 2
    repo=${image%:*}
    ref=$(release_field digest "$repo" <<<"$message")
    [ -n "$ref" ] || die "the tag v$version records no registry digest for \`$repo\` (service $service)" 2
    registry_pull "$ref" >/dev/null || exit $?
    pins+=("$service" "$REGISTRY/$ref")
  done
  ref=$(release_field digest release-gate/smoke <<<"$message")
  if [ -n "$ref" ]; then
    registry_pull "$ref" >/dev/null || exit $?
  fi
  log "pulled release $version from $REGISTRY by digest in $((SECONDS - start))s"
  if [ -n "$ref" ] && [ ! -x "$dir/smoke" ]; then
    local container
    container=$(docker create "$REGISTRY/$ref") || die "docker create of the smoke image $ref failed"
    docker cp "$container:/usr/local/bin/smoke" "$dir/smoke.tmp" >/dev/null \
      || { docker rm "$container" >/dev/null; die "the smoke image $ref has no /usr/local/bin/smoke"; }
    docker rm "$container" >/dev/null
    mv "$dir/smoke.tmp" "$dir/smoke"
  fi
  [ -n "$ref" ] || log "release $version ships no smoke image; smoke is SMOKE_BIN or \`cargo run\`"
  {
    echo "# Written by ci/$SCRIPT.sh: the images of release $version, by registry digest."
    echo "services:"
    local i
    for ((i = 0; i < ${#pins[@]}; i += 2)); do
      printf '  %s:\n    image: %s\n    pull_policy: never\n' "${pins[i]}" "${pins[i + 1]}"
    done
  } >"$dir/images.yml.tmp"
  mv "$dir/images.yml.tmp" "$dir/images.yml"
}

# Runs smoke as release VERSION's own binary from now on (unless SMOKE_BIN names one).
use_release_smoke() {
  local binary="$STATE/releases/$1/smoke"
  if [ -z "${SMOKE_BIN:-}" ] && [ -x "$binary" ]; then
    SMOKE=("$binary")
    SMOKE_RELEASE_BIN=$binary
  fi
}

# Runs in the running services of release VERSION (`exec -T`), one after the other, the
# commands the gate plans from $STACK/gate.toml: FORMAT `operations` (migrate, collectstatic:
# every operation that is not fixture data, in an order that respects `after`) or `staff`.
# Each line is `NAME [-e VAR]... SERVICE COMMAND...`, shell-quoted by smoke.
run_planned() {
  local version=$1 format=$2 text line words
  text=$("${SMOKE[@]}" gate "$STACK" --plan="$format") \
    || die "\`smoke gate $STACK --plan=$format\` failed (above); set DEPLOY_STACK to the stack's folder" 2
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    eval "words=($line)"
    log "running ${words[0]}: ${words[*]:1}"
    dc_release "$version" exec -T "${words[@]:1}" </dev/null >&2 \
      || die "\`${words[0]}\` failed in release $version"
  done <<<"$text"
}

# The running database's applied migrations, as `showmigrations --plan` prints them.
migration_plan() {
  dc_release "$1" exec -T backend python manage.py showmigrations --plan | grep '^\[X\]' || true
}

# A custom-format pg_dump of the running database into the backups folder; prints its path.
backup_database() {
  local label=$1 file
  file="$STATE/backups/$(date -u +%Y%m%dT%H%M%SZ)-$label.dump"
  dc exec -T postgres sh -c 'pg_dump --username="$POSTGRES_USER" --dbname="$POSTGRES_DB" --format=custom' >"$file.tmp" \
    || { rm -f "$file.tmp"; die "pg_dump failed: no backup, so nothing was deployed"; }
  [ -s "$file.tmp" ] || { rm -f "$file.tmp"; die "pg_dump wrote nothing: no backup, so nothing was deployed"; }
  mv "$file.tmp" "$file"
  echo "$file"
}

# Replaces the database with a backup: drop, create, pg_restore (backend must be stopped).
restore_database() {
  local file=$1
  dc exec -T postgres sh -ec '
    psql --no-psqlrc --quiet --username="$POSTGRES_USER" --dbname=postgres --set=ON_ERROR_STOP=1 --set=db="$POSTGRES_DB" <<SQL
DROP DATABASE IF EXISTS :"db" WITH (FORCE);
CREATE DATABASE :"db";
SQL
    pg_restore --username="$POSTGRES_USER" --dbname="$POSTGRES_DB" --no-owner --exit-on-error' <"$file" \
    || die "restoring \`$file\` failed; the database may be empty: restore it by hand (see ci/README.md)"
}

# The smoke checks against the live site, through ci/post-deploy-smoke.sh.
smoke_live() {
  local version=$1 url=${DEPLOY_URL:-}
  [ -n "$url" ] || die "set DEPLOY_URL to the site's base URL (or \`auto\` for a test stack)" 2
  if [ "$url" = auto ]; then
    local port mail site
    port=$(dc_release "$version" port nginx 443 | sed 's/.*://') || die "nginx publishes no port 443"
    url="https://localhost:$port/"
    if port=$(dc_release "$version" port nginx 80 2>/dev/null) && [ -n "$port" ]; then
      export SMOKE_HTTP_URL="http://localhost:${port##*:}/"
    fi
    dc_release "$version" exec -T nginx cat /etc/nginx/certs/tls.crt >"$STATE/ca.pem"
    export SMOKE_CA_CERT="$STATE/ca.pem"
    if mail=$(dc_release "$version" port mail 1080 2>/dev/null) && [ -n "$mail" ]; then
      export SMOKE_MAILBOX="http://127.0.0.1:${mail##*:}/"
    fi
    # The site builds its email links from PUBLIC_SITE_URL, which has no ephemeral port.
    if site=$(dc_release "$version" exec -T backend printenv PUBLIC_SITE_URL 2>/dev/null) && [ -n "$site" ]; then
      export SMOKE_SITE_URL=$site
    fi
  fi
  SMOKE_BIN=${SMOKE_RELEASE_BIN:-${SMOKE_BIN:-}} SMOKE_REPORT_DIR=${SMOKE_REPORT_DIR:-$STATE/smoke/$version} \
    bash ci/post-deploy-smoke.sh "$url"
}
