#!/usr/bin/env bash
# Build rftpd and run its whole test suite, as root, on Debian 12.
# Installs what the build and the tests need first (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "tests/run.sh: run as root (the tests create users, PAM files and chroot jails)" >&2
    exit 1
fi

need=()
for pkg in libpam0g-dev curl openssl python3 passwd login procps iproute2 debootstrap systemd-container haproxy lftp filezilla xvfb xauth xdotool fail2ban logrotate rclone tnftp wget db-util; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}"
fi

cargo build --release --locked
cargo test --release --locked --no-fail-fast -- --test-threads=4
