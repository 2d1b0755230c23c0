#!/usr/bin/env bash
# Measures the suite's wall time split into N partitions, for each N given, by running the
# slices one after another on this machine (`ci/test-partition.sh K N`, from one archive made
# by `ci/test-archive.sh`): with N runners, the suite takes as long as its slowest slice plus
# one runner's provisioning. Prints one line per slice and a table per N; the slices' JUnit
# files are kept under target/bench/partitions/ and merged per N (`smoke report
# --merged-junit` refuses a test found in two slices).
# Run by hand from the repo root, on a quiet machine: `bash ci/bench-partitions.sh 2 3`.
# Each N runs the whole suite once (about 35 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -eq 0 ]; then
  echo "usage: bash ci/bench-partitions.sh N [N...]  (e.g. 2 3)" >&2
  exit 2
fi
OUT=target/bench/partitions
ARCHIVE=$OUT/tests.tar.zst
mkdir -p "$OUT"
bash ci/test-archive.sh "$ARCHIVE" >&2
cargo build -q -p smoke
SMOKE=target/debug/smoke

status=0
table=()
for n in "$@"; do
  walls=() junits=()
  for k in $(seq 1 "$n"); do
    start=$SECONDS
    slice_status=0
    bash ci/test-partition.sh "$k" "$n" "$ARCHIVE" >"$OUT/$n-$k.log" 2>&1 || slice_status=$?
    wall=$((SECONDS - start))
    cp target/nextest/ci/junit.xml "$OUT/$n-$k.junit.xml"
    junits+=(--junit "$OUT/$n-$k.junit.xml")
    summary=$(grep -E '^ *Summary' "$OUT/$n-$k.log" | tail -1 | sed 's/^ *//')
    printf 'slice %d/%d: %5ss wall, exit %d, %s\n' "$k" "$n" "$wall" "$slice_status" "$summary" >&2
    [ "$slice_status" -eq 0 ] || status=1
    walls+=("$wall")
  done
  "$SMOKE" report "${junits[@]}" --merged-junit "$OUT/$n-merged.junit.xml" >/dev/null
  slowest=$(printf '%s\n' "${walls[@]}" | sort -n | tail -1)
  total=$(printf '%s\n' "${walls[@]}" | paste -sd+ - | bc)
  table+=("$(printf '| %d | %s | %ss | %ss |' "$n" "$(printf '%ss ' "${walls[@]}" | sed 's/ $//')" "$slowest" "$total")")
done

echo "| partitions | each slice (run in sequence) | suite wall with one runner per slice (slowest) | machine time (sum) |"
echo "| --- | --- | --- | --- |"
printf '%s\n' "${table[@]}"
exit "$status"
