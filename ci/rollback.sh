#!/usr/bin/env bash
# Rolls the compose host back to the previous known-good release recorded by ci/deploy.sh,
# following the seed's steps: pull the previous release's images by the digests its tag
# records, stop the current release, restore the database from the backup
# taken before the deploy only when the migrations require it, start the previous image tags,
# then the smoke checks (run by $target's own smoke binary). The backup is restored when the deploy recorded a destructive
# migration, or when a migration applied under the previous release is no longer applied.
# ROLLBACK_RESTORE=always|never overrides that decision (default auto).
# Configuration: see ci/lib/compose-host.sh. Exit: 0 rolled back and smoke green; 1 failed;
# 2 nothing to roll back to, or usage; 6 the registry does not answer; 7 the registry lacks a
# digest of the previous release (6 and 7: checked first, nothing was stopped).
# Run by hand from the repo root: `DEPLOY_URL=https://site/ bash ci/rollback.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=rollback
# shellcheck source=ci/lib/compose-host.sh
source ci/lib/compose-host.sh

current=$(cat "$STATE/current" 2>/dev/null || true)
[ -n "$current" ] || die "no release is recorded as deployed in $STATE" 2
rel="$STATE/releases/$current"
target=$(cat "$rel/previous" 2>/dev/null || true)
[ -n "$target" ] || die "release $current has no previous release to roll back to" 2
[ -f "$STATE/releases/$target/images.yml" ] || die "the images of $target are not recorded in $STATE" 2
backup=$(cat "$rel/backup" 2>/dev/null || true)
# The previous release's images, pulled again by the digests of its tag, before anything stops.
fetch_release "$target"
use_release_smoke "$target"

# Restore only when needed: restoring loses every booking made since the deploy.
reasons=()
if [ -s "$rel/destructive" ]; then
  while read -r line; do reasons+=("destructive migration $line"); done <"$rel/destructive"
fi
if [ -f "$STATE/releases/$target/plan" ] && [ -f "$rel/plan" ]; then
  # `showmigrations --plan` is topological: a new migration may sit mid-plan, so "prefix"
  # means here that every migration applied under $target is still applied under $current.
  missing=$(grep -vxF -f "$rel/plan" "$STATE/releases/$target/plan" || true)
  if [ -n "$missing" ]; then
    reasons+=("migrations of $target are no longer applied under $current: $(echo "$missing" | tr '\n' ' ')")
  fi
else
  reasons+=("no migration plan recorded for $target or $current")
fi
case ${ROLLBACK_RESTORE:-auto} in
  always) restore=yes; reasons+=("ROLLBACK_RESTORE=always") ;;
  never) restore=no ;;
  auto) if [ "${#reasons[@]}" -gt 0 ]; then restore=yes; else restore=no; fi ;;
  *) die "ROLLBACK_RESTORE must be auto, always or never" 2 ;;
esac

log "rolling back from $current to $target"
if [ "$restore" = yes ]; then
  [ -n "$backup" ] && [ -s "$backup" ] || die "the database must be restored (${reasons[*]}) but no backup of the deploy of $current exists"
  log "restoring the database from $backup, because:"; printf '  %s\n' "${reasons[@]}" >&2
  log "bookings made since $current was deployed are lost (the backup file stays in place)"
  dc_release "$current" stop nginx backend >&2
  restore_database "$backup"
else
  log "keeping the database: the migrations of $current only added to the schema of $target"
fi
dc_release "$target" up -d --no-build >&2
log "rollback done: $target is up; smoke checks next"
if [ -n "${SMOKE_STAFF_TOKEN:-}" ]; then
  run_planned "$target" staff
fi
echo "$target" >"$STATE/current"

if smoke_live "$target"; then
  log "ROLLED BACK to $target (database $([ "$restore" = yes ] && echo restored || echo kept)); smoke green"
else
  log "FAILED: $target is live again but its smoke checks failed; see the report above"
  exit 1
fi
