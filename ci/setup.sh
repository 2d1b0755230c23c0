#!/usr/bin/env bash
# Everything a bare Debian 12 machine with Rust needs before `smoke gate` and `cargo nextest
# run`: a Docker engine with Compose v2 and buildx, the `debian:bookworm-slim` base image made
# without a registry, cargo-nextest, Dovecot for the IMAP tests, and the linters the lint tests
# run. Each step is idempotent and does nothing when its piece is already there, so running it
# again is cheap. It ends with `smoke doctor`'s verdict.
# Run by hand from the repo root: `bash ci/setup.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/provision-engine.sh
bash ci/base-images.sh
bash ci/provision-rust.sh
bash ci/provision-test-tools.sh
bash ci/provision-lint-tools.sh
cargo run --quiet -p smoke -- doctor
