# pure-ftpd for the benchmark, unpacked from Debian's .deb into the work directory (Debian's
# package conflicts with vsftpd, so it is never installed). Sourced by run.sh (needs log(), $W).
# Installs only the libraries the .deb depends on (via apt, if missing); never touches
# /etc/pure-ftpd or a system pure-ftpd.

PURE_FTPD_BIN=""
PURE_FTPD_VERSION=""

unpack_pure_ftpd() {  # sets PURE_FTPD_BIN, or returns 1 with the reason on stderr
    local dir="$W/pure-ftpd" deb
    mkdir -p "$dir/deb"
    if [ -n "${PURE_FTPD_DEB:-}" ]; then
        deb="$PURE_FTPD_DEB"
    else
        chmod 777 "$dir/deb"   # apt's _apt user downloads into it
        (cd "$dir/deb" && apt-get download -qq pure-ftpd >/dev/null 2>"$dir/download.err") ||
            (apt-get update -qq >/dev/null 2>&1 && cd "$dir/deb" && apt-get download -qq pure-ftpd >/dev/null 2>"$dir/download.err") ||
            { echo "apt-get download pure-ftpd failed: $(tail -1 "$dir/download.err")" >&2; return 1; }
        deb="$(ls "$dir"/deb/pure-ftpd_*.deb | head -1)"
    fi
    dpkg-deb -x "$deb" "$dir/root" || { echo "dpkg-deb -x $deb failed" >&2; return 1; }
    PURE_FTPD_VERSION="$(dpkg-deb -f "$deb" Version)"
    # Its libraries (libsodium, libcap, libpam, libssl, libcrypt, ...): whatever Depends names
    # and is missing. Alternatives ("a | b") take the first.
    local need=() dep
    for dep in $(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/:any//' | tr -d ' '); do
        case "$dep" in debconf*|lsb-base|pure-ftpd-common|init-system-helpers|adduser) continue ;; esac
        dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q 'install ok installed' || need+=("$dep")
    done
    if [ ${#need[@]} -gt 0 ]; then
        log "installing pure-ftpd's libraries: ${need[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null ||
            { echo "apt-get install ${need[*]} failed" >&2; return 1; }
    fi
    if ldd "$dir/root/usr/sbin/pure-ftpd" | grep -q 'not found'; then
        echo "pure-ftpd: missing libraries: $(ldd "$dir/root/usr/sbin/pure-ftpd" | grep 'not found' | tr '\n' ' ')" >&2
        return 1
    fi
    PURE_FTPD_BIN="$dir/root/usr/sbin/pure-ftpd"
}

# The flags that match the other two servers' configurations (see the README's table):
# standalone in the foreground on 127.0.0.1, IPv4, every user chrooted (-A), unix accounts from
# /etc/shadow (-l unix: crypt(3) of the same yescrypt hash; Debian's build also has PAM), no
# anonymous (-E), no DNS (-H), passive range of its own, TLS optional with the same throw-away
# cert (-Y 1, -2 cert,key), umask 022 for files and dirs, the idle timeout of the others in
# minutes (-I $IDLE_MINUTES),
# no syslog (-f none), max clients / per IP raised ($2).
pure_ftpd_args() {  # port max_clients
    printf '%s\n' -S "127.0.0.1,$1" -4 -A -E -H -l unix -p "${PURE_FTPD_PASV[0]}:${PURE_FTPD_PASV[1]}" \
        -c "$2" -C "$2" -U 022:022 -I "$IDLE_MINUTES" -f none
    if $RF_TLS; then
        printf '%s\n' -Y 1 -2 "$W/tls/cert.pem,$W/tls/key.pem"
    fi
}
