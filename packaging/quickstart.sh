#!/usr/bin/env bash
# Build rftpd and run it in the foreground on its embedded defaults (port 21, local users
# jailed in their homes, TLS off). For a fresh Debian 12 with the Rust toolchain, as root.
# Installs the build dependency and, only where missing, the PAM service file and
# /etc/ftpusers. Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "packaging/quickstart.sh: run as root (rftpd binds port 21 and serves local accounts)" >&2
    exit 1
fi
if ! dpkg-query -W -f='${Status}' libpam0g-dev 2>/dev/null | grep -q 'install ok installed'; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq libpam0g-dev
fi
cargo build --release --locked
[ -e /etc/pam.d/rftpd ] || install -m 0644 packaging/pam.d/rftpd /etc/pam.d/rftpd
[ -e /etc/ftpusers ] || install -m 0644 packaging/ftpusers /etc/ftpusers
exec target/release/rftpd "$@"
