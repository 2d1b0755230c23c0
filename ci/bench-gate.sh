#!/usr/bin/env bash
# Measures the release gate against its floor on the same files, images already built:
# N gate runs interleaved with N runs of the floor (plain `docker compose up --wait`, then
# `exec -T` in the running service of each operation the gate file declares that is not
# fixture data, as the gate and a deploy run them, e.g. migrate and collectstatic, then
# `down -v`), so both see the same noise. The compose files and the operations come from the
# gate itself (`smoke gate --plan`), the phases from its reports
# (`smoke report --phases`). Prints every run, the medians, their ratio, and the gate's median
# per phase. A third arm runs the gate without its browser checks (every other category), so
# the time the browser adds is measured in the same run as the floor.
# Run by hand from the repo root: `bash ci/bench-gate.sh [N]` (default 5).
set -euo pipefail

N=${1:-5}
STACK=fixtures/azionelab
OUT=target/bench/gate
mkdir -p "$OUT"
# SMOKE_BIN picks another build (e.g. target/debug/smoke, already built by the tests).
if [ -z "${SMOKE_BIN:-}" ]; then cargo build -q --release -p smoke; fi
SMOKE=$(realpath "${SMOKE_BIN:-target/release/smoke}")

now() { date +%s.%N; }
median() { sort -n | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

compose_text=$("$SMOKE" gate "$STACK" --plan=compose-args)
mapfile -t compose_args <<<"$compose_text"
operations=$("$SMOKE" gate "$STACK" --plan=operations)

floor_run() {
  local project="bench-floor-$RANDOM$RANDOM" line words
  local compose=(docker compose -p "$project" "${compose_args[@]}")
  local start; start=$(now)
  "${compose[@]}" up -d --wait --quiet-pull >/dev/null 2>&1
  # Each line is `NAME [-e VAR]... SERVICE COMMAND...`, shell-quoted by smoke.
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    eval "words=($line)"
    "${compose[@]}" exec -T "${words[@]:1}" </dev/null >/dev/null 2>&1
  done <<<"$operations"
  "${compose[@]}" down -v --remove-orphans --timeout 5 >/dev/null 2>&1
  echo "$(now) - $start" | bc
}

gate_run() {
  local i=$1 start
  shift
  start=$(now)
  "$SMOKE" gate "$STACK" --no-build --runs-dir "$OUT/runs" --report-json "$OUT/gate-$i.json" "$@" >"$OUT/gate-$i.log" 2>&1 \
    || { echo "gate run $i failed; see $OUT/gate-$i.log" >&2; exit 1; }
  echo "$(now) - $start" | bc
}

# Every category of the checks file but `browser` (the steps they depend on still run).
no_browser=$("$SMOKE" list --checks "$STACK/checks.toml" | awk 'NR > 1 && $2 != "browser" {print $2}' | sort -u | paste -sd, -)

: >"$OUT/gate.txt"; : >"$OUT/floor.txt"; : >"$OUT/no-browser.txt"
reports=()
for i in $(seq 1 "$N"); do
  g=$(gate_run "$i"); f=$(floor_run); b=$(gate_run "$i-no-browser" --category "$no_browser")
  echo "$g" >>"$OUT/gate.txt"; echo "$f" >>"$OUT/floor.txt"; echo "$b" >>"$OUT/no-browser.txt"
  reports+=("$OUT/gate-$i.json")
  printf 'run %d: gate %6.1fs  floor %6.1fs  gate without browser checks %6.1fs\n' "$i" "$g" "$f" "$b"
done

gate_median=$(median <"$OUT/gate.txt")
floor_median=$(median <"$OUT/floor.txt")
printf 'median of %d: gate %.1fs, floor %.1fs, ratio %.2f\n' "$N" "$gate_median" "$floor_median" \
  "$(echo "$gate_median / $floor_median" | bc -l)"
no_browser_median=$(median <"$OUT/no-browser.txt")
printf 'browser checks add %.1fs to the gate (median %.1fs with them, %.1fs without)\n' \
  "$(echo "$gate_median - $no_browser_median" | bc -l)" "$gate_median" "$no_browser_median"
# `PHASE SECONDS` lines of every run, in the order the phases ran.
"$SMOKE" report --phases "${reports[@]}" >"$OUT/phases.txt"
echo "gate phases (median of $N):"
cut -d' ' -f1 "$OUT/phases.txt" | awk '!seen[$0]++' | while read -r phase; do
  awk -v phase="$phase" '$1 == phase {print $2}' "$OUT/phases.txt" | median | xargs printf '  %-8s %6.1fs\n' "$phase"
done
