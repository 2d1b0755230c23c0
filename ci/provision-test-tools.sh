#!/usr/bin/env bash
# Installs the tools the tests run against, from Debian's packages: Dovecot as a real IMAP
# server for `smoke::mailbox`, headless Chromium for the browser checks (`smoke run` finds
# it on the PATH; there is no browser download at run time), and the image registry the
# release tests push to, which it then starts on loopback (ci/provision-registry.sh). Safe to
# run again: it installs only what is missing.
set -euo pipefail

missing=()
if ! command -v dovecot >/dev/null 2>&1 || [ ! -x /usr/lib/dovecot/imap ]; then
    # The packages' own service is never used: the tests start `dovecot -F` with their own config.
    missing+=(dovecot-core dovecot-imapd)
fi
if ! command -v chromium >/dev/null 2>&1 || [ ! -x /usr/lib/chromium/chromium-headless-shell ]; then
    # The headless shell is what the browser checks run in (the same engine, a third of the
    # start-up cost); the full browser for people who want to watch. Fonts so that
    # screenshots show text, not boxes.
    missing+=(chromium chromium-headless-shell fonts-dejavu-core)
fi

if ! command -v docker-registry >/dev/null 2>&1; then
    # The package's own service (htpasswd required) is never used: see ci/provision-registry.sh.
    missing+=(docker-registry)
fi

if [ "${#missing[@]}" -eq 0 ]; then
    echo "test tools already installed: $(dovecot --version | head -1), $(/usr/lib/chromium/chromium-headless-shell --version) (headless shell)"
    echo "release registry on $(bash "$(dirname "$0")/provision-registry.sh" --no-install)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "test tools installed: $(dovecot --version | head -1), $(/usr/lib/chromium/chromium-headless-shell --version) (headless shell)"
echo "release registry on $(bash "$(dirname "$0")/provision-registry.sh" --no-install)"
