#!/usr/bin/env bash
# Installs the tools the smoke crate's tests run against on loopback (Dovecot as a real IMAP
# server for `smoke::mailbox`); safe to run again, it installs only what is missing.
set -euo pipefail

if command -v dovecot >/dev/null 2>&1 && [ -x /usr/lib/dovecot/imap ]; then
    echo "dovecot already installed: $(dovecot --version)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The packages' own service is never used: the tests start `dovecot -F` with their own config.
$SUDO apt-get install -y -qq --no-install-recommends dovecot-core dovecot-imapd
echo "dovecot installed: $(dovecot --version)"
