#!/usr/bin/env bash
# Lints what CI cannot run here: the GitHub workflows (actionlint, zizmor), every Dockerfile
# under fixtures/ (hadolint), every compose file set (`docker compose config -q`) and the CI
# scripts (shellcheck). Runs every linter, then fails if any found something.
# Install the linters with `bash ci/provision-lint-tools.sh`.
# Run by hand from the repo root: `bash ci/lint.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

failed=()
run() {
  local name=$1; shift
  if ! command -v "$1" >/dev/null 2>&1; then
    printf "lint: %s: \`%s\` is not installed (run \`bash ci/provision-lint-tools.sh\`)\n" "$name" "$1" >&2
    failed+=("$name (not installed)")
    return
  fi
  printf 'lint: %s\n' "$name" >&2
  "$@" || failed+=("$name")
}

mapfile -t workflows < <(find .github/workflows -name '*.yml' -o -name '*.yaml' 2>/dev/null | sort)
mapfile -t dockerfiles < <(find fixtures -name 'Dockerfile*' -type f | sort)
mapfile -t scripts < <(find ci -name '*.sh' -type f | sort; [ -f .ci/run ] && echo .ci/run)

if [ "${#workflows[@]}" -gt 0 ]; then
  run actionlint actionlint "${workflows[@]}"
  run zizmor zizmor --offline --no-progress .github/workflows
fi
run hadolint hadolint "${dockerfiles[@]}"
# Warnings and errors fail; info and style notes are left to review.
run shellcheck shellcheck --severity=warning --external-sources "${scripts[@]}"

# Compose file sets: each stack as its gate.toml runs it (env file and compose files; the
# multienv infra project too), then every override under fixtures/ layered on the stack its
# expect.toml names (the reference stack by default; a stack's compose files resolve its
# overrides' relative paths, so a stage variant does not parse on the reference stack). The
# `lint` tests check the same sets.
ref=fixtures/azionelab
multi=fixtures/multienv
stage=fixtures/stage
compose_sets=(
  "--env-file $ref/.env.example -f $ref/infra/docker/compose.yml"
  "--env-file $ref/.env.example -f $ref/infra/docker/compose.yml -f $ref/infra/docker/compose.test.yml"
  "--env-file $multi/.env.example -f $multi/app/compose.yml -f $multi/app/compose.test.yml"
  "--env-file $multi/.env.example -f $multi/infra/compose.yml"
  "--env-file $stage/.env.example -f $stage/compose.yml -f $stage/compose.test.yml"
)
while IFS= read -r override; do
  dir=$(dirname "$override")
  if grep -qs '^stack = "multienv"' "$dir"/expect.toml "$dir"/expect.toml.pending; then
    compose_sets+=("${compose_sets[2]} -f $override")
  elif grep -qs '^stack = "stage"' "$dir"/expect.toml "$dir"/expect.toml.pending; then
    compose_sets+=("${compose_sets[4]} -f $override")
  else
    compose_sets+=("${compose_sets[1]} -f $override")
  fi
done < <(find fixtures -name 'compose.override.yml' -type f | sort)
for set in "${compose_sets[@]}"; do
  # Word splitting is wanted: the set is a list of options without spaces.
  # shellcheck disable=SC2086
  run "compose config ($set)" docker compose $set config -q
done

if [ "${#failed[@]}" -gt 0 ]; then
  printf 'lint: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "lint: every linter passed" >&2
