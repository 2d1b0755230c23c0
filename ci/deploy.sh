#!/usr/bin/env bash
# Deploys release VERSION (the tag vVERSION made by ci/release-gate.sh) on this compose host,
# following the seed's steps: pull the release's images from the registry by the digests its
# tag records (never building on the host; a missing digest or a registry that does not
# answer stops it before anything changes), back up the database (pg_dump) into the backups folder,
# `up -d` the new image tags, run the operations the stack's gate.toml declares (migrate and
# collectstatic; not its fixture data) and its staff account, then the smoke checks. Records
# what `ci/rollback.sh` needs: the previous known-good release, the backup, the migration plan
# and whether the migrations it applied can be undone without restoring the backup.
# Configuration: see ci/lib/compose-host.sh. Exit: 0 deployed and smoke green; 1 failed (the
# message says whether to roll back); 2 usage or configuration (no such release tag); 6 the
# registry does not answer; 7 the registry lacks a digest of the release (6 and 7: nothing
# was changed, the previous release keeps running).
# Run by hand from the repo root: `DEPLOY_URL=https://site/ bash ci/deploy.sh 0.2.0`.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=deploy
version=${1:?usage: ci/deploy.sh VERSION}
# shellcheck source=ci/lib/compose-host.sh
source ci/lib/compose-host.sh

previous=$(cat "$STATE/current" 2>/dev/null || true)
[ "$previous" != "$version" ] || die "release $version is already the current one" 2
# 0. Everything this release needs, from the registry by digest, before anything changes.
fetch_release "$version"
use_release_smoke "$version"
rel="$STATE/releases/$version"

# 1. Back up the database before anything changes (first deploy: nothing to back up).
backup=""
if dc ps --status running --services 2>/dev/null | grep -qx postgres; then
  backup=$(backup_database "before-$version")
  log "backed up the database to $backup ($(du -h "$backup" | cut -f1))"
else
  log "no running database: first deploy, nothing to back up"
fi

# 2. The new images, then the one-shot operations and the staff account of the gate file.
log "starting release $version"
dc_release "$version" up -d --no-build >&2
run_planned "$version" operations
if [ -n "${SMOKE_STAFF_TOKEN:-}" ]; then
  run_planned "$version" staff
fi

# 3. What rollback needs: the plan now applied, and whether the migrations this deploy
#    applied are destructive. Old code keeps working on a schema that only gained nullable
#    columns, tables or indexes; a dropped or renamed column or table, a changed type, a new
#    NOT NULL column or raw SQL/Python (which cannot be read) means the previous release
#    needs the backup back.
migration_plan "$version" >"$rel/plan"
: >"$rel/destructive"
if [ -n "$previous" ] && [ -f "$STATE/releases/$previous/plan" ]; then
  while read -r _ migration; do
    grep -qxF "[X]  $migration" "$STATE/releases/$previous/plan" && continue
    sql=$(dc_release "$version" exec -T backend python manage.py sqlmigrate "${migration%%.*}" "${migration#*.}" 2>&1) \
      || { echo "$migration: sqlmigrate failed, treated as destructive" >>"$rel/destructive"; continue; }
    if grep -qiE 'DROP (TABLE|COLUMN)|RENAME|ALTER COLUMN [^;]* TYPE|SET NOT NULL|ADD COLUMN [^;]* NOT NULL|Raw (Python|SQL) operation' <<<"$sql"; then
      echo "$migration: $(grep -iE 'DROP (TABLE|COLUMN)|RENAME|TYPE|NOT NULL|Raw' <<<"$sql" | head -n1)" >>"$rel/destructive"
    fi
  done <"$rel/plan"
fi
echo "$previous" >"$rel/previous"
echo "$backup" >"$rel/backup"
echo "$version" >"$STATE/current"
if [ -s "$rel/destructive" ]; then
  log "destructive migrations in $version (a rollback restores the backup):"; sed 's/^/  /' "$rel/destructive" >&2
fi

# 4. The smoke checks against the live site.
if smoke_live "$version"; then
  log "DEPLOYED $version (previous: ${previous:-none}); smoke green"
else
  status=$?
  log "FAILED: release $version is live but its smoke checks failed (exit $status)"
  [ -z "$previous" ] || log "roll back to $previous with: bash ci/rollback.sh"
  exit 1
fi
