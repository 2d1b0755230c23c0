#!/usr/bin/env bash
# Measures `smoke run` against a running reference stack (started here, torn down at the end):
# the wall time of a full run (median of N), the runner's overhead per check over raw HTTP
# (the pages/health/routing checks against curl fetching the same URLs in parallel), and the
# peak memory of a run: smoke with the headless Chromium its browser steps start, summed over
# the whole process tree (PSS, so what Chromium's processes share counts once). Images must be built (`bash ci/build-images.sh`). The stack is prepared
# as gate.toml prepares it, from the gate's own plan (`smoke gate --plan`): its compose files,
# fresh values for its generated secrets, its operations (migrate, collectstatic), its fixture
# data (whose `exports` become `--var`s) and its staff account, so every check of the checks
# file runs (SMOKE_CHECKS, default the stack's checks.toml).
# Run by hand from the repo root: `bash ci/bench-smoke.sh [N]` (default 5).
set -euo pipefail

N=${1:-5}
STACK=fixtures/azionelab
CHECKS=${SMOKE_CHECKS:-$STACK/checks.toml}
OUT=target/bench/smoke
PROJECT="bench-smoke-$RANDOM$RANDOM"
mkdir -p "$OUT"
# SMOKE_BIN picks another build (e.g. target/debug/smoke, already built by the tests).
if [ -z "${SMOKE_BIN:-}" ]; then cargo build -q --release -p smoke; fi
SMOKE=$(realpath "${SMOKE_BIN:-target/release/smoke}")

plan() { "$SMOKE" gate "$STACK" --plan="$1"; }
compose_text=$(plan compose-args)
secrets=$(plan secrets)
operations=$(plan operations)
fixture_commands=$(plan fixtures)
staff=$(plan staff)
exports=$(plan exports)
mapfile -t compose_args <<<"$compose_text"
compose=(docker compose -p "$PROJECT" "${compose_args[@]}")
trap '"${compose[@]}" down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true' EXIT

# Samples, every 100 ms until PID exits, the summed PSS (KiB) of PID and all its descendants;
# prints the peak.
tree_peak() {
  local root=$1 peak=0 total pid
  while kill -0 "$root" 2>/dev/null; do
    total=0
    for pid in $(ps -e -o pid=,ppid= | awk -v root="$root" '
        { parent[$1] = $2 } END {
          keep[root] = 1; changed = 1
          while (changed) { changed = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 } }
          for (p in keep) print p }'); do
      total=$((total + $(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)))
    done
    [ "$total" -gt "$peak" ] && peak=$total
    sleep 0.1
  done
  echo "$peak"
}

median() { sort -n | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
# Runs each planned command (`NAME [-e VAR]... SERVICE COMMAND...`, shell-quoted by smoke) in a
# fresh container; their stdout goes to stdout.
run_planned() {
  local line words
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    eval "words=($line)"
    "${compose[@]}" run --rm -T "${words[@]:1}" </dev/null
  done <<<"$1"
}

# The secrets gate.toml generates, fresh (the compose files and the commands read them from
# the environment), and the staff token smoke's `staff` credentials read.
while read -r name chars; do
  [ -n "$name" ] || continue
  value=$(openssl rand -hex "$(((chars + 1) / 2))")
  export "$name=${value:0:chars}"
done <<<"$secrets"
SMOKE_STAFF_TOKEN=$(openssl rand -hex 20)
export SMOKE_STAFF_TOKEN

"${compose[@]}" up -d --wait >/dev/null 2>&1
run_planned "$operations" >/dev/null 2>&1
fixtures=$(run_planned "$fixture_commands" 2>/dev/null)
run_planned "$staff" >/dev/null 2>&1
# The fixture data the checks read: the `KEY=VALUE` lines of the keys the gate file exports.
vars=()
while IFS= read -r line; do
  key=${line%%=*}
  if [ "$key" != "$line" ] && grep -qxF -e "$key" <<<"$exports"; then vars+=(--var "$line"); fi
done <<<"$fixtures"
https_port=$("${compose[@]}" port nginx 443 | cut -d: -f2)
http_port=$("${compose[@]}" port nginx 80 | cut -d: -f2)
mail_port=$("${compose[@]}" port mail 1080 | cut -d: -f2)
"${compose[@]}" exec -T nginx cat /etc/nginx/certs/tls.crt >"$OUT/ca.pem"
base="https://localhost:$https_port/"
# The test override's PUBLIC_SITE_URL: the emails' links have no ephemeral port.
args=(run --checks "$CHECKS" --base-url "$base" --site-url https://localhost
  --http-url "http://localhost:$http_port/" --ca-cert "$OUT/ca.pem"
  --mailbox "http://127.0.0.1:$mail_port/" "${vars[@]}" --quiet)

: >"$OUT/full.txt"; : >"$OUT/rss.txt"; : >"$OUT/http-smoke.txt"; : >"$OUT/http-curl.txt"
urls=(/ /shows/ /api/health/ /admin/login/ /api/shows/ /static/admin/css/base.css
  /smoke-no-such-page/ /api/smoke-no-such-endpoint/)
for i in $(seq 1 "$N"); do
  start=$(date +%s.%N)
  "$SMOKE" "${args[@]}" --report-json "$OUT/run-$i.json" >/dev/null &
  smoke_pid=$!
  rss=$(tree_peak "$smoke_pid")
  wait "$smoke_pid"
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  echo "$wall" >>"$OUT/full.txt"; echo "$rss" >>"$OUT/rss.txt"
  start=$(date +%s.%N)
  "$SMOKE" "${args[@]}" --category pages,health,routing >/dev/null
  echo "$(date +%s.%N) - $start" | bc >>"$OUT/http-smoke.txt"
  start=$(date +%s.%N)
  curl -s --no-progress-meter --parallel --cacert "$OUT/ca.pem" -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
    -o /dev/null -o /dev/null -o /dev/null -o /dev/null "${urls[@]/#/${base%/}}"
  echo "$(date +%s.%N) - $start" | bc >>"$OUT/http-curl.txt"
  printf 'run %d: full %ss, peak memory (smoke + browser, PSS) %s KiB\n' "$i" "$wall" "$rss"
done

# `NAME CATEGORY STATUS SECONDS` per check of the first full run.
checks=$("$SMOKE" report --checks "$OUT/run-1.json" | awk '$2 == "pages" || $2 == "health" || $2 == "routing"' | wc -l)
full=$(median <"$OUT/full.txt"); rss=$(median <"$OUT/rss.txt")
ours=$(median <"$OUT/http-smoke.txt"); raw=$(median <"$OUT/http-curl.txt")
browser=$("$SMOKE" report --checks "$OUT/run-1.json" | awk '$2 == "browser"' | wc -l)
printf 'full smoke run (%d browser checks): median %.2fs of %d runs; peak memory (smoke + browser, PSS) median %d KiB\n' \
  "$browser" "$full" "$N" "$rss"
printf 'pages+health+routing (%d checks): smoke %.3fs, curl --parallel %.3fs, overhead %.1f ms per check\n' \
  "$checks" "$ours" "$raw" "$(echo "($ours - $raw) * 1000 / $checks" | bc -l)"
