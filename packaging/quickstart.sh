#!/usr/bin/env bash
# Build rftpd and run it in the foreground on its embedded defaults (port 21, local users
# jailed in their homes, TLS off). For a fresh Debian 12 with the Rust toolchain, as root.
# Installs the build dependency and, only where missing, the PAM service file,
# /etc/ftpusers, the rftpd system account (nopriv_user: no home, no login shell) and
# /run/rftpd/empty (secure_chroot_dir, 0555 root:root). Stop it with Ctrl-C.
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
# The account the pre-login process runs as, made as the Debian package makes it.
if ! getent passwd rftpd >/dev/null; then
    adduser --system --group --no-create-home --home /nonexistent \
        --shell /usr/sbin/nologin --quiet rftpd
fi
if [ "$(getent passwd rftpd | cut -d: -f3)" = 0 ]; then
    echo "packaging/quickstart.sh: the account rftpd has uid 0; give it an unprivileged uid" >&2
    exit 1
fi
# Its empty chroot, as packaging/tmpfiles.d/rftpd.conf says (/run is emptied at every boot).
install -d -m 0755 -o root -g root /run/rftpd
install -d -m 0555 -o root -g root /run/rftpd/empty
exec target/release/rftpd "$@"
