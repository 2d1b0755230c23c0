#!/usr/bin/env bash
# Runs the smoke checks (pages, booking, confirmation, check-in) against a live site with
# `smoke run`, after a deploy or a rollback, and writes JSON, JUnit and Markdown reports
# (the Markdown is also appended to $GITHUB_STEP_SUMMARY when that is set).
#
# Credentials and options come from the environment, never from arguments:
#   SMOKE_CHECKS         the checks file, from the repo root (default the reference stack's
#                        fixtures/azionelab/checks.toml; `smoke run` alone looks for ./checks.toml)
#   SMOKE_STAFF_TOKEN    DRF token of the smoke staff user (check-in checks skip without it)
#   SMOKE_MAILBOX        imaps://USER@HOST:993/ or a MailDev URL (email checks skip without it)
#   SMOKE_IMAP_PASSWORD  the IMAP password
#   SMOKE_HTTP_URL       the site over plain HTTP, to check the redirect to HTTPS
#   SMOKE_CA_CERT        a PEM file to trust besides the public roots (self-signed sites)
#   SMOKE_SITE_URL       the origin the site builds its email links with, when it is not the
#                        URL checked (a test stack on an ephemeral port: https://localhost)
#   SMOKE_CATEGORIES     only these categories, comma-separated
#   SMOKE_REPORT_DIR     where the reports go (default target/smoke-report)
#   SMOKE_READY_TIMEOUT  how long to wait for the health endpoint (smoke's default 30s)
#   SMOKE_BIN            the `smoke` to run: the release's own binary (ci/deploy.sh and
#                        ci/rollback.sh take it from the release's smoke image; the
#                        post-deploy-smoke workflow downloads it from the GitHub release with
#                        ci/fetch-release-smoke.sh). Without it: `cargo run -q -p smoke --`,
#                        which compiles first (minutes, after a rollback: outage)
#   SMOKE_BROWSER        the headless Chromium for the browser checks (default `chromium` or
#                        `google-chrome` on the PATH; without one they are skipped with a note);
#                        a failed browser check keeps its screenshot under the report folder's
#                        `evidence/`
#   anything the checks file reads (`{{env.X}}`, `{{secret.X}}`), e.g. SMOKE_STAFF_PASSWORD,
#   SMOKE_USER_TOKEN; the checks that need an unset one are skipped and say which
# Exit: smoke's own code (0 passed, 1 a check failed, 2 usage, 3 unreachable, 130 interrupted).
# Run by hand from the repo root: `bash ci/post-deploy-smoke.sh https://azionelab.example.org/`.
set -euo pipefail
cd "$(dirname "$0")/.."

url=${1:?usage: ci/post-deploy-smoke.sh URL}
checks=${SMOKE_CHECKS:-fixtures/azionelab/checks.toml}
[ -f "$checks" ] || { echo "post-deploy-smoke: the checks file \`$checks\` does not exist (set SMOKE_CHECKS)" >&2; exit 2; }
report_dir=${SMOKE_REPORT_DIR:-target/smoke-report}
mkdir -p "$report_dir"
# `--report-markdown` appends; each run starts a fresh file.
rm -f "$report_dir/report.md"

args=(run --checks "$checks" --base-url "$url" --report-json "$report_dir/report.json"
  --report-junit "$report_dir/junit.xml" --report-markdown "$report_dir/report.md"
  --evidence-dir "$report_dir/evidence")
if [ -n "${SMOKE_HTTP_URL:-}" ]; then args+=(--http-url "$SMOKE_HTTP_URL"); fi
if [ -n "${SMOKE_MAILBOX:-}" ]; then args+=(--mailbox "$SMOKE_MAILBOX"); fi
if [ -n "${SMOKE_CA_CERT:-}" ]; then args+=(--ca-cert "$SMOKE_CA_CERT"); fi
if [ -n "${SMOKE_SITE_URL:-}" ]; then args+=(--site-url "$SMOKE_SITE_URL"); fi
if [ -n "${SMOKE_CATEGORIES:-}" ]; then args+=(--category "$SMOKE_CATEGORIES"); fi
if [ -n "${SMOKE_READY_TIMEOUT:-}" ]; then args+=(--ready-timeout "$SMOKE_READY_TIMEOUT"); fi
if [ -n "${SMOKE_BIN:-}" ]; then
  smoke=("$SMOKE_BIN")
else
  smoke=(cargo run -q -p smoke --)
  echo "post-deploy-smoke: SMOKE_BIN is not set: compiling smoke first (set it to the release's binary)" >&2
fi
echo "post-deploy-smoke: running ${smoke[*]} against $url" >&2

status=0
"${smoke[@]}" "${args[@]}" || status=$?
if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$report_dir/report.md" ]; then
  cat "$report_dir/report.md" >>"$GITHUB_STEP_SUMMARY"
fi
case $status in
  0) echo "post-deploy-smoke: PASSED against $url (reports in $report_dir)" >&2 ;;
  1) echo "post-deploy-smoke: FAILED: a check failed against $url; roll back with \`bash ci/rollback.sh\` (reports in $report_dir)" >&2 ;;
  3) echo "post-deploy-smoke: FAILED: $url is unreachable or never became ready" >&2 ;;
  *) echo "post-deploy-smoke: FAILED: smoke exited $status" >&2 ;;
esac
exit "$status"
