#!/usr/bin/env bash
# rftpd vs vsftpd vs pure-ftpd, side by side on this machine (loopback only). See
# tests/bench/README.md.
#
#   sudo bash tests/bench/run.sh
#
# Installs vsftpd/curl/openssl/lftp if missing, downloads Debian's pure-ftpd .deb and unpacks
# it into the work directory (the package conflicts with vsftpd), builds rftpd (release),
# creates one throw-away user per server, starts the three with equivalent configurations on
# 127.0.0.1, raises the kernel limits the 10,000-session row needs, runs every workload against
# every server, order rotated per repetition, prints the table, and restores the limits and
# removes users, files and processes again (also on Ctrl-C or error).
#
# Environment (all optional):
#   RFTPD_BIN=path      use this rftpd binary instead of `cargo build --release` in the repo
#                       (RFTPD_REV=text labels it in the report)
#   RFTPD_REF=commit    build that committed revision (git archive) instead of the working tree
#   REPS=5              repetitions per rate/listing/command row   REPS_BIG=5  per 1 GiB row
#   REPS_CURL=2         per curl row    REPS_MIRROR=3  per lftp mirror row   REPS_MEM=3  memory
#   DURATION=6          seconds per rate rep                 CMD_COUNT=2000  round trips per verb
#   MEM_SESSIONS=500    idle sessions for the memory row     MAX_SESSIONS=10000  cap of the max row
#   MAX_SESSIONS_BUDGET=420  seconds to open them            BIG_SIZE=1073741824  bytes
#   ONLY=retr,stor,...  run only these rows; keys: retr retr_zero stor stor_zero retr_tls
#                       retr_tls_zero stor_tls stor_tls_zero (fast client; retr/retr_zero with
#                       the loopback ceiling) curl_retr curl_stor curl_retr_tls curl_stor_tls
#                       logins small1 small8 list nlst mlsd cmd (or cmd_noop cmd_pwd cmd_cwd
#                       cmd_type cmd_size cmd_mdtm) cmd_pin_same cmd_pin_other (info: NOOP
#                       with client and server pinned) mirror mirror4 mirror_r mem max
#   SERVERS=rftpd,vsftpd,pure-ftpd   which servers to run (rftpd is always one of them)
#   SERVER_SESSION=own  each server started with setsid, in a session (autogroup) of its own
#                       as under systemd; `shared`: in the script's session, with the clients
#   PURE_FTPD_DEB=file  use this pure-ftpd .deb instead of `apt-get download pure-ftpd`
#   RFTPD_PORT=21210 VSFTPD_PORT=21211 PURE_FTPD_PORT=21212   control ports; passive ranges
#                       20000-24999 / 25000-29999 / 30000-49999
#   BENCH_OUT=file      also write the markdown report there (BENCH_JSON=file: raw values)
#   BENCH_LOGS=dir      copy both servers' logs and configs there before cleanup
#   BENCH_FS=loop|direct  the homes on a journaled ext4 image / on /tmp itself (default: loop when
#                       /tmp is ext4 without a journal, see "The file system under the homes")
#   BENCH_KEEP=1        keep servers and users after the run until Enter is pressed (profiling)
#   RFTPD_EXTRA=lines   more rftpd.toml lines (newline-separated), e.g. sandbox layers off
#   FAST_TLS_CLIENT=python  TLS fast-client rows with benchlib/fastclient.py instead of the C
#                       client fastclient.c (compiled into the work directory)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

if [ "$(id -u)" != 0 ]; then
    echo "tests/bench/run.sh: run as root (it creates users and starts FTP servers)" >&2
    exit 1
fi

RFTPD_PORT="${RFTPD_PORT:-21210}"
VSFTPD_PORT="${VSFTPD_PORT:-21211}"
PURE_FTPD_PORT="${PURE_FTPD_PORT:-21212}"
RFTPD_PASV=(20000 24999)
VSFTPD_PASV=(25000 29999)
# pure-ftpd allows at most half its passive range as clients (ftpd.c: "so we don't run out of
# ports"): 20,000 ports for 10,000 sessions. The range overlaps the ephemeral one (32768+); a
# port that is some client's ephemeral port at that moment is skipped (pure-ftpd tries the next).
PURE_FTPD_PASV=(30000 49999)
BIG_SIZE="${BIG_SIZE:-1073741824}"
MAX_SESSIONS="${MAX_SESSIONS:-10000}"
MAX_SESSIONS_BUDGET="${MAX_SESSIONS_BUDGET:-420}"
export MAX_SESSIONS_BUDGET
# Idle timeout of every server: the first session of the sessions row must still be there when
# the last one has logged in (at most the row's budget) and every session answers its NOOP.
IDLE_TIMEOUT=$(( MAX_SESSIONS_BUDGET + 300 ))
[ "$IDLE_TIMEOUT" -lt 900 ] && IDLE_TIMEOUT=900
IDLE_MINUTES=$(( (IDLE_TIMEOUT + 59) / 60 ))
SERVERS="${SERVERS:-rftpd,vsftpd,pure-ftpd}"
SERVER_SESSION="${SERVER_SESSION:-own}"
case "$SERVER_SESSION" in own|shared) ;; *) echo "SERVER_SESSION is own or shared" >&2; exit 1 ;; esac
want_server() { [[ ",$SERVERS," == *",$1,"* ]]; }
want_row() { [ -z "${ONLY:-}" ] || [[ ",$ONLY," == *",$1,"* ]]; }

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

# --- 1. Packages -----------------------------------------------------------------------------
need=()
for pkg in vsftpd curl openssl python3 procps passwd iproute2 libpam0g-dev lftp gcc libc6-dev libssl-dev; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # (Where systemd runs, the package also starts its own vsftpd on port 21; ours use other ports.)
    apt-get install -y -qq "${need[@]}" >/dev/null || { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }
fi
VSFTPD_BIN="$(command -v vsftpd || echo /usr/sbin/vsftpd)"

# --- 2. rftpd --------------------------------------------------------------------------------
if [ -n "${RFTPD_BIN:-}" ]; then
    RFTPD="$RFTPD_BIN"
    RFTPD_LABEL="prebuilt ${RFTPD_REV:-$RFTPD_BIN}"
    log "using prebuilt $RFTPD"
elif [ -n "${RFTPD_REF:-}" ]; then
    # A committed revision, built from `git archive` (the working tree stays untouched).
    rev="$(git -C "$REPO" rev-parse --short "$RFTPD_REF")"
    src="$REPO/target/bench-src-$rev"
    rm -rf "$src" && mkdir -p "$src"
    git -C "$REPO" archive "$rev" | tar -x -C "$src"
    log "cargo build --release of $RFTPD_REF ($rev)"
    cargo build --release --manifest-path "$src/Cargo.toml" --target-dir "$REPO/target/bench-ref"
    rm -rf "$src"
    RFTPD="$REPO/target/bench-ref/release/rftpd"
    RFTPD_LABEL="commit $rev"
else
    log "cargo build --release"
    (cd "$REPO" && cargo build --release)
    RFTPD="$REPO/target/release/rftpd"
    RFTPD_LABEL="working tree $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '(no git)')"
fi
[ -x "$RFTPD" ] || { echo "no rftpd binary at $RFTPD" >&2; exit 1; }

# --- 3. Work directory, users, cleanup -------------------------------------------------------
W="$(mktemp -d /tmp/rftpd-bench.XXXXXX)"

# The file system under the homes. ext4 *without a journal* (this project's CI machines' root)
# checks each inode it allocates against recent deletions (fs/ext4/ialloc.c,
# recently_deleted(): for 60-300 s after a delete), so the creates right after a row's cleanup
# of thousands of files scan the inode tables, and whichever server runs next looks slow
# (perf: 10 % of the 4 KiB rows in find_get_block_common, rates spread 1,000-1,900 files/s).
# Debian's installer makes ext4 with a journal, where that check is off. BENCH_FS=loop puts
# $W on such a file system (a sparse image, mkfs.ext4 defaults, loop-mounted); BENCH_FS=direct
# keeps $W where mktemp made it. Default: loop when the ext4 under /tmp has no journal.
FS_IMAGE=""
FS_NOTE=""
if [ -z "${BENCH_FS:-}" ]; then
    BENCH_FS=direct
    if [ "$(findmnt -no FSTYPE -T /tmp)" = ext4 ]; then
        dev="$(basename "$(findmnt -no SOURCE -T /tmp)")"
        ls /proc/fs/jbd2 2>/dev/null | grep -q "^$dev-" || BENCH_FS=loop
    fi
fi
if [ "$BENCH_FS" = loop ]; then
    FS_IMAGE="$W.img"
    # (The cleanup trap is not set yet: a failure here removes the image itself.)
    if ! { truncate -s 64G "$FS_IMAGE" && mkfs.ext4 -q -F "$FS_IMAGE" \
            && mount -o loop "$FS_IMAGE" "$W"; }; then
        rm -f "$FS_IMAGE"
        rmdir "$W"
        echo "run.sh: cannot make the journaled ext4 for the homes (BENCH_FS=direct skips it)" >&2
        exit 1
    fi
    FS_NOTE="homes on a journaled ext4 (mkfs.ext4 defaults, loop-mounted image): the ext4 under /tmp has no journal (BENCH_FS=direct to use it)"
else
    FS_NOTE="homes on the file system under /tmp ($(findmnt -no FSTYPE -T /tmp))"
fi
chmod 755 "$W"   # jailed users must be able to reach their homes below it
PIDS=()
USERS=()
# shellcheck source=tests/bench/limits.sh
. "$HERE/limits.sh"
# shellcheck source=tests/bench/pureftpd.sh
. "$HERE/pureftpd.sh"

# What rftpd refuses to start without (its defaults nopriv_user = "rftpd",
# secure_chroot_dir = "/run/rftpd/empty"), made as the Debian package makes them; kept
# afterwards, as the package's postinst would (a system account, an empty root-owned directory).
if ! getent passwd rftpd >/dev/null; then
    adduser --system --group --no-create-home --home /nonexistent --shell /usr/sbin/nologin \
        --quiet rftpd
fi
install -d -o root -g root -m 0555 /run/rftpd/empty

tree_of() {  # print pid and all its descendants
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { kids[$2] = kids[$2] " " $1 }
        END { todo[1] = root; n = 1; while (n > 0) { p = todo[n--]; print p;
              c = split(kids[p], a, " "); for (i = 1; i <= c; i++) todo[++n] = a[i] } }'
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    local all=()
    for pid in "${PIDS[@]}"; do
        # Whole tree first (sessions outlive their master), then kill each by id.
        all+=($(tree_of "$pid"))
    done
    if [ ${#all[@]} -gt 0 ]; then
        kill -TERM "${all[@]}" 2>/dev/null
        sleep 0.5
        kill -KILL "${all[@]}" 2>/dev/null
        log "cleanup: ${#all[@]} server processes stopped"
    fi
    for u in "${USERS[@]}"; do
        local left
        left=$(pgrep -u "$u" 2>/dev/null | tr '\n' ' ')
        [ -n "$left" ] && kill -KILL $left 2>/dev/null && sleep 0.2
        userdel "$u" 2>/dev/null || userdel -f "$u" 2>/dev/null
    done
    log "cleanup: users removed"
    restore_limits
    if [ -n "${BENCH_LOGS:-}" ]; then
        mkdir -p "$BENCH_LOGS" && cp "$W"/*.log "$W"/*.conf "$W"/*.toml "$BENCH_LOGS"/ 2>/dev/null
    fi
    if [ -n "$FS_IMAGE" ]; then
        umount "$W" 2>/dev/null || { sleep 1; umount -l "$W"; }
        rm -f "$FS_IMAGE"
    fi
    rm -rf "$W"
    log "cleaned up (users ${USERS[*]:-none}, processes ${#all[@]})"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "run.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
ulimit -u unlimited 2>/dev/null || true
if want_row max; then
    raise_limits "$MAX_SESSIONS"
fi

NOTES=("$FS_NOTE")
# The servers of this run: name, control port, user.
NAMES=(rftpd)
want_server vsftpd && NAMES+=(vsftpd)
if want_server pure-ftpd; then
    if unpack_pure_ftpd 2>"$W/pure-ftpd.err"; then
        NAMES+=(pure-ftpd)
        log "pure-ftpd $PURE_FTPD_VERSION unpacked into $W/pure-ftpd"
    else
        NOTES+=("pure-ftpd: left out of this run: $(tr '\n' ' ' < "$W/pure-ftpd.err")")
        log "pure-ftpd left out: $(cat "$W/pure-ftpd.err")"
    fi
fi
declare -A PORT_OF USER_OF PASS HOME_OF PID_OF
PORT_OF=([rftpd]=$RFTPD_PORT [vsftpd]=$VSFTPD_PORT [pure-ftpd]=$PURE_FTPD_PORT)
for name in "${NAMES[@]}"; do
    if ss -ltnH "sport = :${PORT_OF[$name]}" | grep -q .; then
        echo "port ${PORT_OF[$name]} ($name) is in use; set RFTPD_PORT / VSFTPD_PORT / PURE_FTPD_PORT" >&2
        exit 1
    fi
done

mkdir -p "$W/home" "$W/data" "$W/tls"
for name in "${NAMES[@]}"; do
    u="rfb${name:0:1}$$"
    home="$W/home/$u"
    useradd -M -d "$home" -s /bin/bash "$u"
    USERS+=("$u")
    USER_OF[$name]=$u
    PASS[$u]="$(openssl rand -hex 12)"
    echo "$u:${PASS[$u]}" | chpasswd
    mkdir -p "$home"
    chown "$u:" "$home"
    chmod 755 "$home"
    HOME_OF[$u]="$home"
done
log "users ${USERS[*]} created (one per server: ${NAMES[*]})"

# Test data: a random and a zero-filled file of BIG_SIZE (hard-linked into every home: same
# inode, same page cache) and a 10,000-entry directory per home.
log "creating test data (2 x $BIG_SIZE-byte files, 10k-entry directories)"
head -c "$BIG_SIZE" /dev/urandom > "$W/data/big.bin"
head -c "$BIG_SIZE" /dev/zero > "$W/data/zero.bin"
chmod 644 "$W/data/big.bin" "$W/data/zero.bin"
for u in "${USERS[@]}"; do
    ln "$W/data/big.bin" "${HOME_OF[$u]}/big.bin"
    ln "$W/data/zero.bin" "${HOME_OF[$u]}/zero.bin"
    python3 - "${HOME_OF[$u]}/big" "$u" <<'PY'
import os, pwd, sys
d, user = sys.argv[1], sys.argv[2]
pw = pwd.getpwnam(user)
os.mkdir(d, 0o755)
os.chown(d, pw.pw_uid, pw.pw_gid)
for i in range(10000):
    p = os.path.join(d, f"file_{i:05d}.dat")
    with open(p, "wb") as f:
        f.write(b"x" * (i % 1000))
    os.chown(p, pw.pw_uid, pw.pw_gid)
PY
done
cat "$W/data/big.bin" "$W/data/zero.bin" > /dev/null   # page cache, for every server alike

# The TLS rows' fast client (C, OpenSSL; FAST_TLS_CLIENT=python keeps the Python one).
FAST_TLS_CLIENT="${FAST_TLS_CLIENT:-c}"
FAST_CLIENT_BIN=""
if [ "$FAST_TLS_CLIENT" != python ]; then
    gcc -O2 -Wall -o "$W/fastclient" "$HERE/fastclient.c" -lssl -lcrypto
    FAST_CLIENT_BIN="$W/fastclient"
    NOTES+=("TLS fast-client rows: tests/bench/fastclient.c (gcc -O2, $(openssl version | cut -d' ' -f1-2)); plain rows: benchlib/fastclient.py")
else
    NOTES+=("TLS fast-client rows: benchlib/fastclient.py (FAST_TLS_CLIENT=python)")
fi
export FAST_TLS_CLIENT FAST_CLIENT_BIN

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/tls/key.pem" -out "$W/tls/cert.pem" \
    -days 2 -subj "/CN=127.0.0.1" 2>/dev/null
chmod 600 "$W/tls/key.pem"
# --- 4. Configurations -----------------------------------------------------------------------
RF_BASE="listen = true
listen_ipv6 = false
listen_address = \"127.0.0.1\"
listen_port = $RFTPD_PORT
local_enable = true
pam_service_name = \"vsftpd\"
chroot_local_user = true
allow_writeable_chroot = true
write_enable = true
local_umask = 0o022
pasv_enable = true
pasv_min_port = ${RFTPD_PASV[0]}
pasv_max_port = ${RFTPD_PASV[1]}
idle_session_timeout = $IDLE_TIMEOUT"

probe() {  # does `rftpd --check-config` accept the base config plus these lines?
    printf '%s\n' "$RF_BASE" "$@" > "$W/probe.toml"
    "$RFTPD" --check-config --config "$W/probe.toml" >/dev/null 2>"$W/probe.err"
}
probe || { echo "rftpd rejects the base benchmark config:" >&2; cat "$W/probe.err" >&2; exit 1; }

RF_EXTRA=()
# Limits sized for the sessions row: every session of the one bench user is a worker of that
# uid, and RLIMIT_NPROC (worker_max_processes) counts the uid's tasks on the whole host.
LIMIT=$(( MAX_SESSIONS > 4900 ? MAX_SESSIONS + 100 : 5000 ))
NPROC_LINE=()
[ $(( MAX_SESSIONS * 4 + 1000 )) -gt 4096 ] && NPROC_LINE=("worker_max_processes = $(( MAX_SESSIONS * 4 + 1000 ))")
for line in "max_clients = $LIMIT" "max_per_ip = $LIMIT" "${NPROC_LINE[@]}" 'data_connection_timeout = 300' 'session_support = false' 'xferlog_enable = false'; do
    if probe "$line"; then
        RF_EXTRA+=("$line")
    else
        NOTES+=("rftpd does not accept \`$line\` yet; left out of its config")
    fi
done

# RFTPD_EXTRA: more rftpd.toml lines (one per line), e.g. to measure with sandbox layers off.
if [ -n "${RFTPD_EXTRA:-}" ]; then
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        if probe "${RF_EXTRA[@]}" "$line"; then
            RF_EXTRA+=("$line")
        else
            echo "RFTPD_EXTRA: rftpd does not accept \`$line\`" >&2
            exit 1
        fi
    done <<< "$RFTPD_EXTRA"
fi

RF_TLS=false
TLS_REASON=""
TLS_LINES=("ssl_enable = true" "rsa_cert_file = \"$W/tls/cert.pem\"" "rsa_private_key_file = \"$W/tls/key.pem\"")
if probe "${RF_EXTRA[@]}" "${TLS_LINES[@]}"; then
    RF_TLS=true
    RF_EXTRA+=("${TLS_LINES[@]}")
    # Plain and TLS clients use the same server, as with vsftpd below.
    for line in 'force_local_logins_ssl = false' 'force_local_data_ssl = false'; do
        if probe "${RF_EXTRA[@]}" "$line"; then RF_EXTRA+=("$line"); else NOTES+=("rftpd does not accept \`$line\`"); fi
    done
else
    TLS_REASON="rftpd has no ssl_enable yet: $(head -c 200 "$W/probe.err" | tr '\n' ' ')"
    echo "TLS rows: n/a (rftpd has no ssl_enable yet)" >&2
fi
printf '%s\n' "$RF_BASE" "${RF_EXTRA[@]}" > "$W/rftpd.toml"
"$RFTPD" --check-config --config "$W/rftpd.toml" >/dev/null

cat > "$W/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$VSFTPD_PORT
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
chroot_local_user=YES
allow_writeable_chroot=YES
pasv_enable=YES
pasv_min_port=${VSFTPD_PASV[0]}
pasv_max_port=${VSFTPD_PASV[1]}
pam_service_name=vsftpd
secure_chroot_dir=/var/run/vsftpd/empty
max_clients=5000
max_per_ip=5000
idle_session_timeout=$IDLE_TIMEOUT
data_connection_timeout=300
xferlog_enable=NO
dirmessage_enable=NO
use_localtime=NO
EOF
if $RF_TLS; then
    cat >> "$W/vsftpd.conf" <<EOF
ssl_enable=YES
rsa_cert_file=$W/tls/cert.pem
rsa_private_key_file=$W/tls/key.pem
force_local_logins_ssl=NO
force_local_data_ssl=NO
ssl_ciphers=HIGH
EOF
fi
mkdir -p /var/run/vsftpd/empty

# --- 5. Start them ---------------------------------------------------------------------------
wait_greeting() {  # port name pid
    for _ in $(seq 100); do
        kill -0 "$3" 2>/dev/null || { echo "$2 exited at start; its log:" >&2; cat "$W/$2.log" >&2; exit 1; }
        if python3 -c "
import socket,sys
s=socket.create_connection(('127.0.0.1',$1),timeout=2)
sys.exit(0 if s.makefile('rb').readline().startswith(b'220') else 1)" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "$2 did not greet on port $1" >&2; exit 1
}

# Each server in a session (and so, with the kernel's autogroup scheduling, a CPU group) of its
# own, apart from the benchmark's clients: as systemd starts a service, and as a server's
# real clients, on other hosts, are. SERVER_SESSION=shared starts them in the script's own.
LAUNCH=()
[ "$SERVER_SESSION" = own ] && LAUNCH=(setsid)
"${LAUNCH[@]}" "$RFTPD" --config "$W/rftpd.toml" >"$W/rftpd.log" 2>&1 &
RFTPD_PID=$!
PIDS+=("$RFTPD_PID")
PID_OF[rftpd]=$RFTPD_PID
if want_server vsftpd; then
    "${LAUNCH[@]}" "$VSFTPD_BIN" "$W/vsftpd.conf" >"$W/vsftpd.log" 2>&1 &
    PID_OF[vsftpd]=$!
    PIDS+=("${PID_OF[vsftpd]}")
fi
PURE_FTPD_MAX=$(( MAX_SESSIONS > 50 ? MAX_SESSIONS : 50 ))
if [ -n "$PURE_FTPD_BIN" ]; then
    mapfile -t pf_args < <(pure_ftpd_args "$PURE_FTPD_PORT" "$PURE_FTPD_MAX")
    printf '%s\n' "$PURE_FTPD_BIN" "${pf_args[@]}" > "$W/pure-ftpd.conf"   # for BENCH_LOGS
    "${LAUNCH[@]}" "$PURE_FTPD_BIN" "${pf_args[@]}" >"$W/pure-ftpd.log" 2>&1 &
    PID_OF[pure-ftpd]=$!
    PIDS+=("${PID_OF[pure-ftpd]}")
fi
for name in "${NAMES[@]}"; do
    wait_greeting "${PORT_OF[$name]}" "$name" "${PID_OF[$name]}"
done
log "started: $(for n in "${NAMES[@]}"; do printf '%s (pid %s) on :%s; ' "$n" "${PID_OF[$n]}" "${PORT_OF[$n]}"; done)"

# Preflight: a login and a TLS listing on each, so a broken setup fails here and not per row.
for name in "${NAMES[@]}"; do
    port=${PORT_OF[$name]}
    u=${USER_OF[$name]}
    if ! curl -sS --fail --user "$u:${PASS[$u]}" "ftp://127.0.0.1:$port/" -l >/dev/null 2>"$W/preflight.err"; then
        echo "$name: plain login + NLST failed: $(cat "$W/preflight.err")" >&2
        exit 1
    fi
    if $RF_TLS; then
        if curl -sS --fail -v --ssl-reqd -k --user "$u:${PASS[$u]}" "ftp://127.0.0.1:$port/" -l >/dev/null 2>"$W/preflight.err"; then
            NOTES+=("$name TLS: $(grep -m1 -o 'SSL connection using .*' "$W/preflight.err" || echo 'negotiated (curl printed no cipher line)')")
        else
            echo "$name: TLS login + NLST failed: $(grep -v '^[*>}{<]' "$W/preflight.err" | tail -3)" >&2
            exit 1
        fi
    fi
done

NOTES+=("all servers: 127.0.0.1, rftpd and vsftpd through PAM service vsftpd (pure-ftpd: -l unix), chroot_local_user, allow_writeable_chroot, write_enable, local_umask 022, passive ranges of their own, idle timeout $IDLE_TIMEOUT s (pure-ftpd: $IDLE_MINUTES min); rftpd extra keys: $(printf '%s; ' "${RF_EXTRA[@]}" | sed "s|$W/tls/||g")")
if [ "$SERVER_SESSION" = own ]; then
    NOTES+=("every server started with setsid: a session, and an autogroup of the CPU scheduler, of its own, apart from the clients' (SERVER_SESSION=own)")
else
    NOTES+=("servers started in the benchmark's own session, sharing the clients' autogroup (SERVER_SESSION=shared); rftpd's sessions still each make a session of their own")
fi
want_server vsftpd && NOTES+=("vsftpd runs its built-in defaults plus the same settings (session_support=NO, isolate/isolate_network as built, max_clients/max_per_ip 5000, xferlog off); its sessions row is capped at 2000, vsftpd's documented max_clients default and the most this comparison asks of it")
[ -n "$PURE_FTPD_BIN" ] && NOTES+=("pure-ftpd $PURE_FTPD_VERSION (Debian's .deb, unpacked, not installed): $(sed 1d "$W/pure-ftpd.conf" | tr '\n' ' ' | sed "s|$W/tls/||g")")

# --- 6. Run ----------------------------------------------------------------------------------
# One line per server for setup.json: name port pid user password home max_cap (tab-separated).
: > "$W/servers.tsv"
chmod 600 "$W/servers.tsv"
for name in "${NAMES[@]}"; do
    u=${USER_OF[$name]}
    cap=""
    [ "$name" = vsftpd ] && cap=2000
    [ "$name" = pure-ftpd ] && cap=$PURE_FTPD_MAX
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "${PORT_OF[$name]}" "${PID_OF[$name]}" "$u" \
        "${PASS[$u]}" "${HOME_OF[$u]}" "$cap" >> "$W/servers.tsv"
done
export W RF_TLS TLS_REASON BIG_SIZE RFTPD RFTPD_LABEL VSFTPD_BIN PURE_FTPD_VERSION
NOTES_JSON="$(printf '%s\n' "${NOTES[@]}")" python3 - <<'PY'
import json, os, subprocess
e = os.environ
def sh(c):
    try:
        return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return "?"
versions = [sh(f"{e['RFTPD']} --version") + " (" + e["RFTPD_LABEL"] + ")",
            "vsftpd " + sh("dpkg-query -W -f='${Version}' vsftpd"),
            "pure-ftpd " + (e.get("PURE_FTPD_VERSION") or "(not run)"),
            sh("curl --version | head -1 | cut -d' ' -f1-2"),
            sh("lftp --version | head -1 | grep -o 'Version [^ ]*'").replace("Version", "lftp"),
            sh("python3 --version")]
machine = {
    "nproc": sh("nproc"), "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-").strip(),
    "kernel": sh("uname -r"), "mem": sh("free -g | awk '/Mem:/ {print $2 \" GiB RAM\"}'"),
    "date": sh("date -u '+%Y-%m-%d %H:%M UTC'"), "load": sh("cut -d' ' -f1-3 /proc/loadavg"),
    "versions": versions,
}
tls = e["RF_TLS"] == "true"
servers = []
with open(os.path.join(e["W"], "servers.tsv")) as fh:
    for line in fh:
        name, port, pid, user, password, home, cap = line.rstrip("\n").split("\t")
        servers.append({"name": name, "port": int(port), "pid": int(pid), "user": user,
                        "password": password, "home": home, "tls": tls,
                        "tls_reason": e["TLS_REASON"] if name == "rftpd" else "skipped with rftpd's",
                        "max_cap": int(cap) if cap else None})
setup = {"servers": servers, "big_file": os.path.join(e["W"], "data", "big.bin"),
         "zero_file": os.path.join(e["W"], "data", "zero.bin"), "work": e["W"],
         "big_size": int(e["BIG_SIZE"]), "machine": machine,
         "notes": [n for n in e["NOTES_JSON"].split("\n") if n]}
path = os.path.join(e["W"], "setup.json")
with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
    json.dump(setup, f)
PY

args=(--setup "$W/setup.json" --only "${ONLY:-}")
[ -n "${BENCH_OUT:-}" ] && args+=(--out "$BENCH_OUT")
[ -n "${BENCH_JSON:-}" ] && args+=(--json-out "$BENCH_JSON")
python3 "$HERE/bench.py" "${args[@]}"

if [ -n "${BENCH_KEEP:-}" ]; then
    log "BENCH_KEEP: servers still running: $(for n in "${NAMES[@]}"; do u=${USER_OF[$n]}; printf '%s pid %s :%s user %s password %s; ' "$n" "${PID_OF[$n]}" "${PORT_OF[$n]}" "$u" "${PASS[$u]}"; done); press Enter to clean up"
    read -r _ || true
fi
