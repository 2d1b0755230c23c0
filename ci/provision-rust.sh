#!/usr/bin/env bash
# Makes sure the Rust tools the CI jobs use are present: rustfmt and clippy (through rustup,
# when rustup manages the toolchain) and cargo-nextest at a pinned version. Idempotent.
# Run by hand from the repo root: `bash ci/provision-rust.sh`.
set -euo pipefail

NEXTEST_VERSION=0.9.143

if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null
fi
if cargo nextest --version >/dev/null 2>&1; then
  echo "provision-rust: $(cargo nextest --version | head -n1) already installed" >&2
else
  echo "provision-rust: installing cargo-nextest $NEXTEST_VERSION from crates.io" >&2
  cargo install --locked cargo-nextest --version "$NEXTEST_VERSION"
fi
