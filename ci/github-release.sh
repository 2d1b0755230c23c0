#!/usr/bin/env bash
# Creates the GitHub release of a tag that ci/release-gate.sh made and ci/push-tag.sh pushed,
# with the release's `smoke` binary (and its .sha256) from target/release-artifacts/VERSION/
# attached, and the tag message (gate verdict, image IDs, registry digests) as its notes.
# Post-deploy smoke downloads that binary (ci/fetch-release-smoke.sh) instead of compiling.
# Usage: GH_TOKEN=... GH_REPO=owner/name bash ci/github-release.sh VERSION
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:?usage: ci/github-release.sh VERSION}
: "${GH_TOKEN:?set GH_TOKEN (a token allowed to create releases)}"
: "${GH_REPO:?set GH_REPO (owner/name)}"
tag="v$version"
dir=target/release-artifacts/$version
mapfile -t assets < <(find "$dir" -maxdepth 1 -type f -name "smoke-$version-*" 2>/dev/null | sort)
[ "${#assets[@]}" -gt 0 ] \
  || { echo "github-release: error: no smoke binary under $dir (did ci/release-gate.sh pass?)" >&2; exit 1; }
notes=$(mktemp)
trap 'rm -f "$notes"' EXIT
git tag -l --format='%(contents)' "$tag" >"$notes"
[ -s "$notes" ] || { echo "github-release: error: there is no tag \`$tag\`" >&2; exit 1; }
gh release create "$tag" --verify-tag --title "$tag" --notes-file "$notes" "${assets[@]}"
echo "github-release: created the release $tag with ${assets[*]}" >&2
