#!/usr/bin/env bash
# rftpd vs vsftpd, side by side on this machine (loopback only). See tests/bench/README.md.
#
#   sudo bash tests/bench/run.sh
#
# Installs vsftpd/curl/openssl if missing, builds rftpd (release), creates two throw-away
# users, starts rftpd and vsftpd with equivalent configurations on 127.0.0.1, runs every
# workload against both, interleaved, prints the table, and removes users, files and
# processes again (also on Ctrl-C or error).
#
# Environment (all optional):
#   RFTPD_BIN=path      use this rftpd binary instead of `cargo build --release` in the repo
#                       (RFTPD_REV=text labels it in the report)
#   RFTPD_REF=commit    build that committed revision (git archive) instead of the working tree
#   REPS=5              repetitions per rate/listing row     REPS_BIG=5  per 1 GiB row
#   REPS_MEM=3          repetitions of the memory row        DURATION=8  seconds per rate rep
#   MEM_SESSIONS=500    idle sessions for the memory row     MAX_SESSIONS=3000  cap of the max row
#   MAX_SESSIONS_BUDGET=150  seconds to open them            BIG_SIZE=1073741824  bytes
#   ONLY=retr,stor,...  run only these rows; keys: retr (with the loopback ceiling) stor
#                       retr_tls stor_tls logins small1 small8 list nlst mlsd mem max
#   RFTPD_PORT=21210 VSFTPD_PORT=21211   control ports; passive ranges 20000-24999 / 25000-29999
#   BENCH_OUT=file      also write the markdown report there (BENCH_JSON=file: raw values)
#   BENCH_LOGS=dir      copy both servers' logs and configs there before cleanup
#   BENCH_KEEP=1        keep servers and users after the run until Enter is pressed (profiling)
#   RFTPD_EXTRA=lines   more rftpd.toml lines (newline-separated), e.g. sandbox layers off
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

if [ "$(id -u)" != 0 ]; then
    echo "tests/bench/run.sh: run as root (it creates users and starts FTP servers)" >&2
    exit 1
fi

RFTPD_PORT="${RFTPD_PORT:-21210}"
VSFTPD_PORT="${VSFTPD_PORT:-21211}"
RFTPD_PASV=(20000 24999)
VSFTPD_PASV=(25000 29999)
BIG_SIZE="${BIG_SIZE:-1073741824}"

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

# --- 1. Packages -----------------------------------------------------------------------------
need=()
for pkg in vsftpd curl openssl python3 procps passwd iproute2 libpam0g-dev; do
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
chmod 755 "$W"   # jailed users must be able to reach their homes below it
U_R="rfbr$$"
U_V="rfbv$$"
PIDS=()
USERS=()

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
    fi
    for u in "${USERS[@]}"; do
        local left
        left=$(pgrep -u "$u" 2>/dev/null | tr '\n' ' ')
        [ -n "$left" ] && kill -KILL $left 2>/dev/null && sleep 0.2
        userdel "$u" 2>/dev/null || userdel -f "$u" 2>/dev/null
    done
    if [ -n "${BENCH_LOGS:-}" ]; then
        mkdir -p "$BENCH_LOGS" && cp "$W"/*.log "$W"/*.conf "$W"/*.toml "$BENCH_LOGS"/ 2>/dev/null
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

for port in "$RFTPD_PORT" "$VSFTPD_PORT"; do
    if ss -ltnH "sport = :$port" | grep -q .; then
        echo "port $port is in use; set RFTPD_PORT / VSFTPD_PORT" >&2
        exit 1
    fi
done

mkdir -p "$W/home" "$W/data" "$W/tls"
declare -A PASS HOME_OF
for u in "$U_R" "$U_V"; do
    home="$W/home/$u"
    useradd -M -d "$home" -s /bin/bash "$u"
    USERS+=("$u")
    PASS[$u]="$(openssl rand -hex 12)"
    echo "$u:${PASS[$u]}" | chpasswd
    mkdir -p "$home"
    chown "$u:" "$home"
    chmod 755 "$home"
    HOME_OF[$u]="$home"
done
log "users $U_R (rftpd) and $U_V (vsftpd) created"

# Test data: one 1 GiB file (hard-linked into both homes: same inode, same page cache) and a
# 10,000-entry directory per home.
log "creating test data ($BIG_SIZE-byte file, 10k-entry directories)"
head -c "$BIG_SIZE" /dev/urandom > "$W/data/big.bin"
chmod 644 "$W/data/big.bin"
for u in "$U_R" "$U_V"; do
    ln "$W/data/big.bin" "${HOME_OF[$u]}/big.bin"
    python3 - "${HOME_OF[$u]}/big" "$u" <<'EOF'
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
EOF
done
cat "$W/data/big.bin" > /dev/null   # page cache, for both servers alike

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/tls/key.pem" -out "$W/tls/cert.pem" \
    -days 2 -subj "/CN=127.0.0.1" 2>/dev/null
chmod 600 "$W/tls/key.pem"

# --- 4. Configurations -----------------------------------------------------------------------
NOTES=()
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
idle_session_timeout = 300"

probe() {  # does `rftpd --check-config` accept the base config plus these lines?
    printf '%s\n' "$RF_BASE" "$@" > "$W/probe.toml"
    "$RFTPD" --check-config --config "$W/probe.toml" >/dev/null 2>"$W/probe.err"
}
probe || { echo "rftpd rejects the base benchmark config:" >&2; cat "$W/probe.err" >&2; exit 1; }

RF_EXTRA=()
for line in 'max_clients = 5000' 'max_per_ip = 5000' 'data_connection_timeout = 300' 'session_support = false' 'xferlog_enable = false'; do
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
idle_session_timeout=300
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

# --- 5. Start both ---------------------------------------------------------------------------
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

"$RFTPD" --config "$W/rftpd.toml" >"$W/rftpd.log" 2>&1 &
RFTPD_PID=$!
PIDS+=("$RFTPD_PID")
"$VSFTPD_BIN" "$W/vsftpd.conf" >"$W/vsftpd.log" 2>&1 &
VSFTPD_PID=$!
PIDS+=("$VSFTPD_PID")
wait_greeting "$RFTPD_PORT" rftpd "$RFTPD_PID"
wait_greeting "$VSFTPD_PORT" vsftpd "$VSFTPD_PID"
log "rftpd (pid $RFTPD_PID) on :$RFTPD_PORT, vsftpd (pid $VSFTPD_PID) on :$VSFTPD_PORT"

# Preflight: a login and a TLS listing on each, so a broken setup fails here and not per row.
for pair in "rftpd:$RFTPD_PORT:$U_R" "vsftpd:$VSFTPD_PORT:$U_V"; do
    IFS=: read -r name port u <<<"$pair"
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

NOTES+=("both: 127.0.0.1, PAM service vsftpd, chroot_local_user, allow_writeable_chroot, write_enable, local_umask 022, passive ranges of 5000 ports, idle_session_timeout 300; rftpd extra keys: $(printf '%s; ' "${RF_EXTRA[@]}" | sed "s|$W/tls/||g")")
NOTES+=("vsftpd runs its built-in defaults plus the same settings (session_support=NO, isolate/isolate_network as built, max_clients/max_per_ip 5000, xferlog off)")

# --- 6. Run ----------------------------------------------------------------------------------
export W U_R U_V RFTPD_PORT VSFTPD_PORT RFTPD_PID VSFTPD_PID RF_TLS TLS_REASON BIG_SIZE RFTPD REPO RFTPD_LABEL
export PASS_R="${PASS[$U_R]}" PASS_V="${PASS[$U_V]}"
NOTES_JSON="$(printf '%s\n' "${NOTES[@]}")" python3 - <<'EOF'
import json, os, subprocess
e = os.environ
def sh(c):
    try:
        return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return "?"
cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-").strip()
machine = {
    "nproc": sh("nproc"), "cpu": cpu, "kernel": sh("uname -r"),
    "mem": sh("free -g | awk '/Mem:/ {print $2 \" GiB RAM\"}'"),
    "date": sh("date -u '+%Y-%m-%d %H:%M UTC'"), "load": sh("cut -d' ' -f1-3 /proc/loadavg"),
    "rftpd": sh(f"{e['RFTPD']} --version") + " (" + e["RFTPD_LABEL"] + ")",
    "vsftpd": "vsftpd " + sh("dpkg-query -W -f='${Version}' vsftpd"),
    "curl": sh("curl --version | head -1 | cut -d' ' -f1-2"),
}
tls = e["RF_TLS"] == "true"
servers = [
    {"name": "rftpd", "port": int(e["RFTPD_PORT"]), "pid": int(e["RFTPD_PID"]), "user": e["U_R"],
     "password": e["PASS_R"], "home": os.path.join(e["W"], "home", e["U_R"]), "tls": tls,
     "tls_reason": e["TLS_REASON"]},
    {"name": "vsftpd", "port": int(e["VSFTPD_PORT"]), "pid": int(e["VSFTPD_PID"]), "user": e["U_V"],
     "password": e["PASS_V"], "home": os.path.join(e["W"], "home", e["U_V"]), "tls": tls,
     "tls_reason": "skipped with rftpd's" if not tls else ""},
]
setup = {"servers": servers, "big_file": os.path.join(e["W"], "data", "big.bin"),
         "big_size": int(e["BIG_SIZE"]), "machine": machine,
         "notes": [n for n in e["NOTES_JSON"].split("\n") if n]}
path = os.path.join(e["W"], "setup.json")
with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
    json.dump(setup, f)
EOF

args=(--setup "$W/setup.json" --only "${ONLY:-}")
[ -n "${BENCH_OUT:-}" ] && args+=(--out "$BENCH_OUT")
[ -n "${BENCH_JSON:-}" ] && args+=(--json-out "$BENCH_JSON")
python3 "$HERE/bench.py" "${args[@]}"

if [ -n "${BENCH_KEEP:-}" ]; then
    log "BENCH_KEEP: servers still running (rftpd pid $RFTPD_PID :$RFTPD_PORT user $U_R password ${PASS[$U_R]}; vsftpd pid $VSFTPD_PID :$VSFTPD_PORT user $U_V password ${PASS[$U_V]}); press Enter to clean up"
    read -r _ || true
fi
