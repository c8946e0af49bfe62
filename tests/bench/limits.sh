# Kernel limits for the "sessions held" row, raised for the run and restored afterwards.
# Sourced by run.sh (needs log() and $W); never lowers a value, and restores only what it
# changed. See "Limits for 10,000 sessions" in tests/bench/README.md.
#
# Per idle logged-in session: rftpd holds a monitor and a worker (2 processes of 1 thread each
# while idle, 21 fds together; a worker starts threads for transfers), pure-ftpd 2 processes,
# vsftpd 2; the client holds 1 socket. Each task is a pid (kernel.pid_max counts threads) and
# counts against kernel.threads-max.

SYSCTL_SAVED=()   # "key=old value" for each key this file changed

raise_sysctl() {  # key minimum
    local key=$1 want=$2 now
    now=$(sysctl -n "$key" 2>/dev/null) || { log "sysctl $key: not available, left alone"; return 0; }
    if [ "$now" -lt "$want" ]; then
        if sysctl -q -w "$key=$want" >/dev/null 2>&1; then
            SYSCTL_SAVED+=("$key=$now")
            log "sysctl $key: $now -> $want (restored at exit)"
        else
            log "sysctl $key: cannot raise $now to $want (container?); the sessions row may stop early"
        fi
    fi
}

raise_limits() {  # sessions
    local n=$1
    [ "$n" -gt 1000 ] || return 0
    raise_sysctl kernel.pid_max $(( n * 8 + 32768 > 4194304 ? 4194304 : n * 8 + 32768 ))
    raise_sysctl kernel.threads-max $(( n * 8 + 65536 ))
    raise_sysctl fs.file-max $(( n * 64 + 262144 ))
    raise_sysctl fs.nr_open 1048576
    # Namespaces: rftpd gives every worker PID, IPC, UTS, mount and network namespaces.
    for ns in net pid ipc uts mnt; do
        raise_sysctl "user.max_${ns}_namespaces" $(( n * 2 + 1024 ))
    done
    # Listen backlogs: 16 logins at a time never fill them; somaxconn only caps what servers ask.
    raise_sysctl net.core.somaxconn 4096
    # Client ports: the client connects from 127.0.1.1, 127.0.1.2, … (2000 sessions per
    # address), so each (source address, server port) pair needs only 2000 ephemeral ports;
    # net.ipv4.ip_local_port_range is checked, not changed (it is shared with the machine).
    local lo hi
    read -r lo hi < /proc/sys/net/ipv4/ip_local_port_range
    if [ $(( hi - lo + 1 )) -lt 4000 ]; then
        log "net.ipv4.ip_local_port_range $lo-$hi has fewer than 4000 ports; the sessions row may stop early"
    fi
    # The client's and the servers' descriptors (run.sh's processes inherit this): the client
    # holds one socket per session. Raised if the hard limit lets it (CAP_SYS_RESOURCE).
    local fds=$(( n + 4096 ))
    [ "$(ulimit -Sn)" -ge "$fds" ] && return 0
    ulimit -Hn "$fds" 2>/dev/null || true
    ulimit -Sn "$fds" 2>/dev/null || log "ulimit -n $fds refused (hard limit $(ulimit -Hn)); the sessions row may stop early"
}

restore_limits() {
    local kv
    for kv in "${SYSCTL_SAVED[@]}"; do
        sysctl -q -w "$kv" >/dev/null 2>&1 || echo "could not restore sysctl $kv" >&2
    done
    [ ${#SYSCTL_SAVED[@]} -eq 0 ] || log "sysctls restored: ${SYSCTL_SAVED[*]}"
    SYSCTL_SAVED=()
}
