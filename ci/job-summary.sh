#!/usr/bin/env bash
# Writes a CI job summary with `smoke report`: the test counts and failed tests of nextest's
# JUnit report (of each JUNIT file given, as one run: the slices of a partitioned run, merged
# into target/nextest/ci/junit.xml), a table of the newest 20 gate runs under target/gate*/ (verdict, target,
# counts, failed checks: one row per report.json), then the full Markdown report of each of
# the newest 10 release gates (target/gate-release/VERSION/report.json). A report that
# cannot be read is a row saying why and does not stop the summary. Appends to
# $GITHUB_STEP_SUMMARY, or prints when it is unset.
# Environment: SMOKE_BIN (a built `smoke`; default `cargo run -q -p smoke --`).
# Run by hand from the repo root: `bash ci/job-summary.sh [JUNIT...]`
# (default target/nextest/ci/junit.xml).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${GITHUB_STEP_SUMMARY:-/dev/stdout}
if [ -n "${SMOKE_BIN:-}" ]; then smoke=("$SMOKE_BIN"); else smoke=(cargo run -q -p smoke --); fi
# `smoke report` exits 2 when a report cannot be read, after printing what it could; any
# other failure (smoke itself missing) stops the summary.
report() { "${smoke[@]}" report "$@" || [ $? -eq 2 ]; }
# The newest COUNT report.json files that `find target FIND_ARGS...` selects, oldest first.
newest() {
  local count=$1
  shift
  find target "$@" -name report.json -type f -printf '%T@ %p\n' 2>/dev/null \
    | sort -n | tail -n "$count" | cut -d' ' -f2-
}

merged=target/nextest/ci/junit.xml
if [ $# -gt 0 ]; then junits=("$@"); else junits=("$merged"); fi
junit_args=()
for junit in "${junits[@]}"; do
  [ -f "$junit" ] && junit_args+=(--junit "$junit")
done
if [ $# -gt 0 ] && [ "${#junit_args[@]}" -gt 0 ]; then
  mkdir -p "$(dirname "$merged")"
  junit_args+=(--merged-junit "$merged")
fi
mapfile -t runs < <(newest 20 -path 'target/gate*')
# The release gate's own reports; its runs folder holds the same runs' copies.
mapfile -t releases < <(newest 10 -path 'target/gate-release/*' -not -path 'target/gate-release/runs/*')
{
  if [ "${#junit_args[@]}" -gt 0 ]; then
    report "${junit_args[@]}"
  else
    printf '## Tests\n\nno JUnit report (the test run did not get that far)\n\n'
  fi
  if [ "${#runs[@]}" -gt 0 ]; then
    printf '## Gate runs\n\n'
    report --table "${runs[@]}"
    printf '\n'
  fi
  for path in "${releases[@]}"; do
    printf '### %s\n\n' "$path"
    report --markdown "$path"
    printf '\n\n'
  done
} >>"$out"
