#!/usr/bin/env bash
# nextest's setup script `preflight` (.config/nextest.toml): prints, at the top of a test run,
# whether this machine can run the container tests, with `smoke doctor` (the gate's own
# preflight). Without CI it never fails the run: the container tests then pass without
# running, each printing SKIPPED, and this banner says so once, where nobody can miss it.
# Under CI (or SMOKE_REQUIRE_ENGINE=1) a machine that cannot run them fails the run here.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
# The `smoke` nextest's build just made for the tests (they run it): building it again here
# would compile it with other features (no dev-dependencies), a minute and a half for nothing.
smoke="${CARGO_TARGET_DIR:-target}/debug/smoke"
if [ ! -x "$smoke" ]; then
    echo "preflight: $smoke is not built; the container tests will say whether they can run" >&2
    exit 0
fi
out=$("$smoke" doctor 2>&1)
code=$?
if [ "$code" -eq 0 ]; then
    echo "preflight: $out"
    exit 0
fi
echo "preflight: $out" >&2
if [ "$code" -ne 5 ]; then
    echo "preflight: \`smoke doctor\` itself failed (exit $code)" >&2
    exit "$code"
fi
if [ -n "${CI:-}" ] && [ "${CI}" != "false" ] || [ "${SMOKE_REQUIRE_ENGINE:-}" = "1" ]; then
    echo "preflight: CI requires the container tests to run; provision the machine first" >&2
    exit 1
fi
echo "preflight: WARNING: the container tests will be SKIPPED (they pass without running)." >&2
exit 0
