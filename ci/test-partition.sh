#!/usr/bin/env bash
# Runs one slice of the test suite from an archive made by `ci/test-archive.sh`, on a machine
# with its own engine: provisions the engine, the base images and the example images, then
# `cargo nextest run --partition hash:K/N` with the `ci` profile. Each slice writes its JUnit
# to target/nextest/ci/junit.xml; `smoke report --junit A --junit B ... --merged-junit OUT`
# joins them (and refuses a test found in two slices).
# Run by hand from the repo root: `bash ci/test-partition.sh K N [ARCHIVE]`, e.g. 1 3.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 2 ]; then
  echo "usage: bash ci/test-partition.sh K N [ARCHIVE]  (slice K of N, 1 <= K <= N)" >&2
  exit 2
fi
k=$1 n=$2
archive=${3:-target/nextest/tests.tar.zst}
if [ ! -f "$archive" ]; then
  echo "no test archive at $archive: build it first with \`bash ci/test-archive.sh\`" >&2
  exit 2
fi

export CI=${CI:-true}
export SMOKE_REQUIRE_DOVECOT=1
export SMOKE_REQUIRE_BROWSER=1
# The partition test lists the suite from this archive instead of compiling it again.
SMOKE_NEXTEST_ARCHIVE=$(realpath "$archive")
export SMOKE_NEXTEST_ARCHIVE

bash ci/provision-engine.sh
bash ci/provision-test-tools.sh
bash ci/base-images.sh
bash ci/build-images.sh
exec cargo nextest run --profile ci --archive-file "$archive" --workspace-remap . \
  --partition "hash:$k/$n"
