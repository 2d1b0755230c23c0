#!/usr/bin/env bash
# Pushes one release tag that `ci/release-gate.sh` created, with the workflow's token given
# as an HTTP header for this one command (the checkout keeps no credentials).
# Usage: GITHUB_TOKEN=... REPOSITORY=owner/name bash ci/push-tag.sh vVERSION
set -euo pipefail

tag=${1:?usage: ci/push-tag.sh vVERSION}
: "${GITHUB_TOKEN:?set GITHUB_TOKEN (a token allowed to push tags)}"
: "${REPOSITORY:?set REPOSITORY (owner/name)}"
server=${GITHUB_SERVER_URL:-https://github.com}

git rev-parse -q --verify "refs/tags/$tag" >/dev/null \
  || { echo "push-tag: error: there is no tag \`$tag\` (did ci/release-gate.sh pass?)" >&2; exit 1; }
auth=$(printf 'x-access-token:%s' "$GITHUB_TOKEN" | base64 -w0)
echo "::add-mask::$auth"
git -c "http.extraheader=AUTHORIZATION: basic $auth" push "$server/$REPOSITORY.git" "refs/tags/$tag"
echo "push-tag: pushed $tag" >&2
