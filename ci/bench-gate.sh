#!/usr/bin/env bash
# Measures the release gate against its floor on the same files, images already built:
# N gate runs interleaved with N runs of the floor (plain `docker compose up --wait`, then
# `run --rm backend python manage.py migrate`, then `down -v`), so both see the same noise.
# Prints every run, the medians, their ratio, and the gate's median per phase.
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

floor_run() {
  local project="bench-floor-$RANDOM$RANDOM"
  local compose=(docker compose -p "$project" --env-file "$STACK/.env.example"
    -f "$STACK/infra/docker/compose.yml" -f "$STACK/infra/docker/compose.test.yml")
  local start; start=$(now)
  "${compose[@]}" up -d --wait --quiet-pull >/dev/null 2>&1
  "${compose[@]}" run --rm -T backend python manage.py migrate --noinput >/dev/null 2>&1
  "${compose[@]}" down -v --remove-orphans --timeout 5 >/dev/null 2>&1
  echo "$(now) - $start" | bc
}

gate_run() {
  local i=$1 start
  start=$(now)
  "$SMOKE" gate --no-build --runs-dir "$OUT/runs" --report-json "$OUT/gate-$i.json" >"$OUT/gate-$i.log" 2>&1 \
    || { echo "gate run $i failed; see $OUT/gate-$i.log" >&2; exit 1; }
  echo "$(now) - $start" | bc
}

: >"$OUT/gate.txt"; : >"$OUT/floor.txt"
for i in $(seq 1 "$N"); do
  g=$(gate_run "$i"); f=$(floor_run)
  echo "$g" >>"$OUT/gate.txt"; echo "$f" >>"$OUT/floor.txt"
  printf 'run %d: gate %6.1fs  floor %6.1fs\n' "$i" "$g" "$f"
done

gate_median=$(median <"$OUT/gate.txt")
floor_median=$(median <"$OUT/floor.txt")
printf 'median of %d: gate %.1fs, floor %.1fs, ratio %.2f\n' "$N" "$gate_median" "$floor_median" \
  "$(echo "$gate_median / $floor_median" | bc -l)"
echo "gate phases (median of $N):"
for phase in build up migrate healthy checks down; do
  for f in "$OUT"/gate-*.json; do
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print([p['duration_ms'] for p in r['phases'] if p['phase']==sys.argv[2]][0]/1000)" "$f" "$phase"
  done | median | xargs printf '  %-8s %6.1fs\n' "$phase"
done
