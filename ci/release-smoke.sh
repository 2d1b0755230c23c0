#!/usr/bin/env bash
# Builds the `smoke` CLI of a release once, as the artifacts the release ships: the binary
# (glibc, stripped) `target/release-artifacts/VERSION/smoke-VERSION-x86_64-linux-gnu` with its
# `.sha256`, and the small image `release-gate/smoke:VERSION` (FROM the local
# debian:bookworm-slim of ci/base-images.sh, with ca-certificates and the binary as its
# entrypoint). ci/release-gate.sh calls it, gates with that binary, and pushes the image to the
# registry by digest; release.yml attaches the binary to the GitHub release. Post-deploy smoke
# then runs the release's own binary, never a fresh compile.
# Prints the binary's path on stdout.
# Environment: RELEASE_SMOKE_BIN, an already built `smoke` to ship instead of building one
# (the tests pass their own build); otherwise `cargo build --release -p smoke`.
# Exit: 0 built; 2 usage; 4 the binary or the image did not build.
# Run by hand from the repo root: `bash ci/release-smoke.sh 0.2.0`.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'release-smoke: %s\n' "$*" >&2; }
die() { printf 'release-smoke: error: %s\n' "$*" >&2; exit "${2:-1}"; }

version=${1:-}
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z][0-9A-Za-z.-]*)?$ ]] \
  || die "usage: ci/release-smoke.sh VERSION (a version like 1.2.3, not \`$version\`)" 2
arch=$(uname -m)
out_dir=target/release-artifacts/$version
binary="$out_dir/smoke-$version-$arch-linux-gnu"

if [ -n "${RELEASE_SMOKE_BIN:-}" ]; then
  [ -x "$RELEASE_SMOKE_BIN" ] || die "RELEASE_SMOKE_BIN=\`$RELEASE_SMOKE_BIN\` is not an executable" 2
  source_bin=$RELEASE_SMOKE_BIN
else
  log "building smoke (cargo build --release -p smoke)"
  cargo build --release --locked -p smoke >&2 || die "cargo build --release -p smoke failed" 4
  source_bin=${CARGO_TARGET_DIR:-target}/release/smoke
fi
mkdir -p "$out_dir"
strip -o "$binary.tmp" "$source_bin" 2>/dev/null || cp "$source_bin" "$binary.tmp"
mv "$binary.tmp" "$binary"
(cd "$out_dir" && sha256sum "$(basename "$binary")" >"$(basename "$binary").sha256")

# The image runs the binary on the base it must run on: refuse a binary that needs a newer
# glibc than the base image has (a build on a newer distribution than the servers).
need=$(objdump -T "$binary" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -n1 || true)
have=$(docker run --rm --network none debian:bookworm-slim ldd --version 2>/dev/null | head -n1 | grep -o '[0-9.]*$' || true)
if [ -n "$need" ] && [ -n "$have" ] \
  && [ "$(printf '%s\n%s\n' "${need#GLIBC_}" "$have" | sort -V | tail -n1)" != "$have" ]; then
  die "smoke needs $need but debian:bookworm-slim has glibc $have: build it on Debian 12 (or older)" 4
fi

context=$(mktemp -d "${TMPDIR:-/tmp}/release-smoke.XXXXXX")
trap 'rm -rf "$context"' EXIT
cp "$binary" "$context/smoke"
cat >"$context/Dockerfile" <<'EOF'
# The smoke CLI of one release (ci/release-smoke.sh). Run it against a site with the host's
# network: docker run --rm --network host IMAGE run --checks ... --base-url URL
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
COPY smoke /usr/local/bin/smoke
USER 65534
ENTRYPOINT ["/usr/local/bin/smoke"]
EOF
log "building the image release-gate/smoke:$version"
docker build -q --label "org.opencontainers.image.version=$version" -t "release-gate/smoke:$version" "$context" >&2 \
  || die "the smoke image did not build" 4
echo "$binary"
