#!/usr/bin/env bash
# Downloads the `smoke` binary attached to the GitHub release vVERSION (ci/github-release.sh),
# checks it against its .sha256, and prints its path: post-deploy smoke then runs the release's
# own binary (SMOKE_BIN) and starts in seconds, with no Rust toolchain and no compile.
# Usage: GH_TOKEN=... GH_REPO=owner/name bash ci/fetch-release-smoke.sh VERSION [DIR]
set -euo pipefail

version=${1:?usage: ci/fetch-release-smoke.sh VERSION [DIR]}
dir=${2:-target/release-smoke/$version}
name="smoke-$version-$(uname -m)-linux-gnu"
mkdir -p "$dir"
gh release download "v$version" --pattern "$name" --pattern "$name.sha256" --dir "$dir" --clobber >&2 \
  || { echo "fetch-release-smoke: error: the release v$version has no asset $name" >&2; exit 1; }
(cd "$dir" && sha256sum --check --quiet "$name.sha256") \
  || { echo "fetch-release-smoke: error: $name does not match its .sha256" >&2; exit 1; }
chmod +x "$dir/$name"
echo "$dir/$name"
