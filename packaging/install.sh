#!/bin/sh
# Install rftpd without dpkg: the binary, its configuration (only where none exists), the PAM
# service, /etc/ftpusers (only if missing), the systemd units and the man pages. The same
# files, with the same contents, as the Debian package; use the package where dpkg exists.
#
# Usage: packaging/install.sh [--destdir DIR] [--binary FILE]
#        packaging/install.sh --uninstall [--purge] [--destdir DIR]
#
#   --binary FILE  the rftpd to install (default: target/release/rftpd; cargo build --release)
#   --destdir DIR  install under DIR instead of / (staging; systemctl is then not called)
#   --uninstall    remove the binary, units and man pages; keep the configuration
#   --purge        with --uninstall: remove /etc/rftpd.toml, /etc/pam.d/rftpd and rftpd's
#                  user lists too. /etc/ftpusers is never removed (other FTP servers use it).
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
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
man=$destdir/usr/local/share/man
etc=$destdir/etc

# systemctl only for a live install on a host that runs systemd.
systemd() {
    if [ -z "$destdir" ] && [ -d /run/systemd/system ]; then
        systemctl "$@"
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
    install -D -m 0644 "$here/man/rftpd.8" "$man/man8/rftpd.8"
    install -D -m 0644 "$here/man/rftpd.toml.5" "$man/man5/rftpd.toml.5"
    systemd daemon-reload
    echo "install.sh: installed rftpd under ${destdir:-/}; start it with: systemctl enable --now rftpd" >&2
else
    systemd disable --now rftpd.socket rftpd.service >/dev/null 2>&1 || true
    rm -f "$sbin/rftpd" "$units/rftpd.service" "$units/rftpd.socket" \
        "$man/man8/rftpd.8" "$man/man5/rftpd.toml.5"
    if [ "$purge" = yes ]; then
        rm -f "$etc/rftpd.toml" "$etc/pam.d/rftpd" "$etc/rftpd.chroot_list" "$etc/rftpd.user_list"
    fi
    systemd daemon-reload
    echo "install.sh: removed rftpd from ${destdir:-/}" >&2
fi
