#!/usr/bin/env bash
# Measures `smoke run` against a running reference stack (started here, torn down at the end):
# the wall time of a full run (median of N), the runner's overhead per check over raw HTTP
# (the pages/health/routing checks against curl fetching the same URLs in parallel), and the
# CLI's peak memory. Images must be built (`bash ci/build-images.sh`). The stack is prepared
# as gate.toml prepares it (migrate, collectstatic, the fixture data, the staff account), so
# every check of the checks file runs (SMOKE_CHECKS, default the stack's checks.toml).
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

compose=(docker compose -p "$PROJECT" --env-file "$STACK/.env.example"
  -f "$STACK/infra/docker/compose.yml" -f "$STACK/infra/docker/compose.test.yml")
trap '"${compose[@]}" down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true' EXIT

median() { sort -n | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

"${compose[@]}" up -d --wait >/dev/null 2>&1
"${compose[@]}" run --rm -T backend python manage.py migrate --noinput >/dev/null 2>&1
"${compose[@]}" run --rm -T backend python manage.py collectstatic --noinput >/dev/null 2>&1
# The variables gate.toml generates, and the fixture data its `fixtures` operation exports.
SMOKE_STAFF_TOKEN=$(openssl rand -hex 20)
SMOKE_STAFF_PASSWORD=$(openssl rand -hex 32)
SMOKE_USER_TOKEN=$(openssl rand -hex 20)
export SMOKE_STAFF_TOKEN SMOKE_STAFF_PASSWORD SMOKE_USER_TOKEN
"${compose[@]}" run --rm -T -e SMOKE_STAFF_TOKEN -e SMOKE_STAFF_PASSWORD backend \
  python manage.py ensure_staff smoke >/dev/null 2>&1
fixtures=$("${compose[@]}" run --rm -T -e SMOKE_USER_TOKEN backend \
  python manage.py smoke_fixtures --run-id bench 2>/dev/null)
vars=()
while IFS= read -r line; do
  case $line in UNPUBLISHED_SHOW_ID=* | PAST_SHOW_ID=*) vars+=(--var "$line") ;; esac
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
  /usr/bin/time -f '%e %M' -o "$OUT/time-$i.txt" "$SMOKE" "${args[@]}" --report-json "$OUT/run-$i.json" >/dev/null
  read -r wall rss <"$OUT/time-$i.txt"
  echo "$wall" >>"$OUT/full.txt"; echo "$rss" >>"$OUT/rss.txt"
  start=$(date +%s.%N)
  "$SMOKE" "${args[@]}" --category pages,health,routing >/dev/null
  echo "$(date +%s.%N) - $start" | bc >>"$OUT/http-smoke.txt"
  start=$(date +%s.%N)
  curl -s --no-progress-meter --parallel --cacert "$OUT/ca.pem" -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
    -o /dev/null -o /dev/null -o /dev/null -o /dev/null "${urls[@]/#/${base%/}}"
  echo "$(date +%s.%N) - $start" | bc >>"$OUT/http-curl.txt"
  printf 'run %d: full %ss, peak RSS %s KiB\n' "$i" "$wall" "$rss"
done

checks=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(sum(1 for c in r['checks'] if c['category'] in ('pages','health','routing')))" "$OUT/run-1.json")
full=$(median <"$OUT/full.txt"); rss=$(median <"$OUT/rss.txt")
ours=$(median <"$OUT/http-smoke.txt"); raw=$(median <"$OUT/http-curl.txt")
printf 'full smoke run: median %.2fs of %d runs; peak RSS median %d KiB\n' "$full" "$N" "$rss"
printf 'pages+health+routing (%d checks): smoke %.3fs, curl --parallel %.3fs, overhead %.1f ms per check\n' \
  "$checks" "$ours" "$raw" "$(echo "($ours - $raw) * 1000 / $checks" | bc -l)"
