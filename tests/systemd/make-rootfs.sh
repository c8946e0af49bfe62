#!/bin/sh
# Make, once per machine, the Debian 12 root file system that tests/systemd.rs boots with
# systemd-nspawn; each test run boots a copy of it, so the cache stays clean.
# Usage: make-rootfs.sh CACHE_DIR          (CACHE_DIR/.rftpd-rootfs-ready marks it complete)
set -eu
cache=$1
ready="$cache/.rftpd-rootfs-ready"
[ -e "$ready" ] && exit 0

# One builder at a time; a second caller waits and then finds it ready.
exec 9>"$cache.lock"
flock 9
[ -e "$ready" ] && exit 0

# The Debian mirror this host's apt uses (not the security archive).
mirror=$(grep -hE '^[[:space:]]*(URIs:|deb[[:space:]])' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
             /etc/apt/sources.list.d/*.sources 2>/dev/null \
         | grep -oE 'https?://[^[:space:]]+/debian/?([[:space:]]|$)' | grep -v security | head -n1 | tr -d '[:space:]')
mirror=${mirror:-http://deb.debian.org/debian}

rm -rf "$cache" "$cache.tmp"
echo "make-rootfs.sh: debootstrap bookworm from $mirror into $cache" >&2
debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,curl,libpam-modules,libpam-runtime,passwd,adduser,procps \
    bookworm "$cache.tmp" "$mirror" >&2
chroot "$cache.tmp" apt-get clean
# A container has no console login to offer.
chroot "$cache.tmp" systemctl mask console-getty.service getty@tty1.service >/dev/null 2>&1 || true
touch "$cache.tmp/.rftpd-rootfs-ready"
mv "$cache.tmp" "$cache"
