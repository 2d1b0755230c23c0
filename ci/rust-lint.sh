#!/usr/bin/env bash
# Checks formatting and runs clippy on every target of the workspace with warnings denied.
# Run by hand from the repo root: `bash ci/rust-lint.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null
fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
