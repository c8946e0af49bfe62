#!/bin/sh
# Install rftpd without dpkg: the binary, its configuration (only where none exists), the PAM
# service, /etc/ftpusers (only if missing), the systemd units, the tmpfiles.d entry and the
# man pages; on a live install also the rftpd system account (nopriv_user) and
# /run/rftpd/empty (secure_chroot_dir). The same files, with the same contents, as the Debian
# package; use the package where dpkg exists.
#
# Usage: packaging/install.sh [--destdir DIR] [--binary FILE]
#        packaging/install.sh --uninstall [--purge] [--destdir DIR]
#
#   --binary FILE  the rftpd to install (default: target/release/rftpd; cargo build --release)
#   --destdir DIR  install under DIR instead of / (staging; systemctl is then not called)
#   --uninstall    remove the binary, units, tmpfiles.d entry and man pages; keep the
#                  configuration and the rftpd account
#   --purge        with --uninstall: remove /etc/rftpd.toml, /etc/pam.d/rftpd, rftpd's
#                  user lists and the rftpd account too. /etc/ftpusers is never removed
#                  (other FTP servers use it).
#
# Nothing is enabled or started: run `systemctl enable --now rftpd` afterwards.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
destdir=
binary=$top/target/release/rftpd
action=install
purge=no

while [ $# -gt 0 ]; do
    case "$1" in
        --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
        --binary) binary=${2:?--binary needs a file}; shift 2 ;;
        --uninstall) action=uninstall; shift ;;
        --purge) purge=yes; shift ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ "$purge" = yes ] && [ "$action" != uninstall ]; then
    echo "install.sh: --purge goes with --uninstall" >&2
    exit 2
fi

# Where each file goes. The units use /usr/sbin/rftpd; units and man pages go to the
# directories systemd and man read for locally installed files.
sbin=$destdir/usr/sbin
units=$destdir/usr/local/lib/systemd/system
tmpfiles=$destdir/usr/local/lib/tmpfiles.d
man=$destdir/usr/local/share/man
etc=$destdir/etc

# systemctl only for a live install on a host that runs systemd.
systemd() {
    if [ -z "$destdir" ] && [ -d /run/systemd/system ]; then
        systemctl "$@"
    fi
}

# The system account the pre-login process runs as (nopriv_user), made as the package's
# postinst makes it: no home, no login shell. adduser where it exists (Debian), else useradd.
make_account() {
    if ! getent passwd rftpd >/dev/null; then
        nologin=/usr/sbin/nologin
        [ -x "$nologin" ] || nologin=/sbin/nologin
        [ -x "$nologin" ] || nologin=/bin/false
        if command -v adduser >/dev/null 2>&1 && adduser --help 2>&1 | grep -q -- --system; then
            adduser --system --group --no-create-home --home /nonexistent \
                --shell "$nologin" --quiet rftpd
        else
            useradd --system --user-group --no-create-home --home-dir /nonexistent \
                --shell "$nologin" rftpd
        fi
    fi
    # SECURITY: a uid 0 rftpd account would run the unauthenticated pre-login process as root.
    if [ "$(getent passwd rftpd | cut -d: -f3)" = 0 ]; then
        echo "install.sh: the account rftpd has uid 0; give it an unprivileged uid" >&2
        exit 1
    fi
}

remove_account() {
    if getent passwd rftpd >/dev/null; then
        if command -v deluser >/dev/null 2>&1; then deluser --system --quiet rftpd || true
        else userdel rftpd || true; fi
    fi
    if getent group rftpd >/dev/null; then
        if command -v delgroup >/dev/null 2>&1; then delgroup --system --only-if-empty --quiet rftpd || true
        else groupdel rftpd || true; fi
    fi
}

# secure_chroot_dir: what the tmpfiles.d entry says, also where systemd-tmpfiles is missing.
make_empty_dir() {
    if command -v systemd-tmpfiles >/dev/null 2>&1; then
        systemd-tmpfiles --create "$tmpfiles/rftpd.conf"
    else
        install -d -m 0755 -o root -g root /run/rftpd
        install -d -m 0555 -o root -g root /run/rftpd/empty
    fi
}

# A file that may already hold an admin's changes: install only where there is none.
install_config() {
    src=$1 dst=$2
    if [ -e "$dst" ]; then
        if ! cmp -s "$src" "$dst"; then
            echo "install.sh: keeping $dst (it differs from the shipped $src)" >&2
        fi
    else
        install -D -m 0644 "$src" "$dst"
    fi
}

if [ "$action" = install ]; then
    if [ ! -x "$binary" ]; then
        echo "install.sh: no rftpd binary at $binary; build it (cargo build --release) or pass --binary" >&2
        exit 1
    fi
    if [ -z "$destdir" ] && command -v dpkg-query >/dev/null 2>&1 \
        && dpkg-query -W -f='${Status}' rftpd 2>/dev/null | grep -q 'install ok installed'; then
        echo "install.sh: the rftpd package is installed; upgrade it with dpkg instead" >&2
        exit 1
    fi
    install -D -m 0755 "$binary" "$sbin/rftpd"
    install_config "$top/config/rftpd.toml" "$etc/rftpd.toml"
    install_config "$here/pam.d/rftpd" "$etc/pam.d/rftpd"
    # Shared with other FTP servers: create it if missing, never change it.
    install_config "$here/ftpusers" "$etc/ftpusers"
    install -D -m 0644 "$here/rftpd.service" "$units/rftpd.service"
    install -D -m 0644 "$here/rftpd.socket" "$units/rftpd.socket"
    install -D -m 0644 "$here/tmpfiles.d/rftpd.conf" "$tmpfiles/rftpd.conf"
    install -D -m 0644 "$here/man/rftpd.8" "$man/man8/rftpd.8"
    install -D -m 0644 "$here/man/rftpd.toml.5" "$man/man5/rftpd.toml.5"
    if [ -z "$destdir" ]; then
        make_account
        make_empty_dir
    fi
    systemd daemon-reload
    echo "install.sh: installed rftpd under ${destdir:-/}; start it with: systemctl enable --now rftpd" >&2
else
    systemd disable --now rftpd.socket rftpd.service >/dev/null 2>&1 || true
    rm -f "$sbin/rftpd" "$units/rftpd.service" "$units/rftpd.socket" \
        "$tmpfiles/rftpd.conf" "$man/man8/rftpd.8" "$man/man5/rftpd.toml.5"
    if [ "$purge" = yes ]; then
        rm -f "$etc/rftpd.toml" "$etc/pam.d/rftpd" "$etc/rftpd.chroot_list" "$etc/rftpd.user_list"
        if [ -z "$destdir" ]; then
            remove_account
            rmdir /run/rftpd/empty /run/rftpd 2>/dev/null || true
        fi
    fi
    systemd daemon-reload
    echo "install.sh: removed rftpd from ${destdir:-/}" >&2
fi
