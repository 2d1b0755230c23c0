#!/usr/bin/env bash
# Builds every test binary (and the `smoke` binary the tests run) once, into a nextest archive
# that `ci/test-partition.sh` runs on other machines without compiling.
# Run by hand from the repo root: `bash ci/test-archive.sh [ARCHIVE]`
# (default target/nextest/tests.tar.zst).
set -euo pipefail
cd "$(dirname "$0")/.."

archive=${1:-target/nextest/tests.tar.zst}
mkdir -p "$(dirname "$archive")"
cargo nextest archive --workspace --archive-file "$archive"
echo "test archive: $archive ($(du -h "$archive" | cut -f1))"
