//! Which system call a sandboxed child was killed for: after a worker or pre-login process
//! died of `SIGSYS` (its seccomp filter, `crate::jail::seccomp`), the monitor looks for the
//! kernel's record of the kill (audit type 1326) in `/dev/kmsg` or auditd's log, so the
//! session's end can name the call.
//!
//! Runs in the monitor, as root, after the child has died. It only reads the kernel log and
//! `/proc`, bounded in records and bytes, and takes nothing from them but a pid match and a
//! number; it must never act on what it reads (it only names the call in the log).

use std::os::unix::fs::OpenOptionsExt;

/// What the monitor logs for a child that died of `SIGSYS`: the system call's number, from the
/// kernel's log of the seccomp kill (audit record type 1326) when it can be read, else that it
/// is unknown. `global_pid`: the child's pid as the kernel log names it (the initial PID
/// namespace's), when known.
pub fn describe_kill(global_pid: Option<i32>) -> String {
    let Some(pid) = global_pid else {
        return "unknown (the kernel log names it: dmesg or the audit log, type=1326)".to_owned();
    };
    match kill_record(pid) {
        Some(number) => match syscall_name(number) {
            Some(name) => format!("{name} ({number})"),
            None => number.to_string(),
        },
        None => format!("unknown (pid {pid}; see dmesg or the audit log, type=1326)"),
    }
}

/// The pid the kernel log gives a child of this process that has ended but is not reaped yet
/// (`local`: its pid in this process's namespace): through the host's `/proc`, which lists
/// this process's children with their pid in each namespace (`NSpid`).
pub fn global_pid(local: nix::unistd::Pid) -> Option<i32> {
    let me = std::fs::read_link("/proc/self").ok()?;
    let me = me.to_str()?;
    let children = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).ok()?;
    for child in children.split_whitespace() {
        let status = std::fs::read_to_string(format!("/proc/{child}/status")).ok()?;
        let ids: Vec<i32> = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))?
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        if ids.last() == Some(&local.as_raw()) {
            return ids.first().copied();
        }
    }
    None
}

/// Most kernel log records read looking for a seccomp kill.
const MAX_RECORDS: usize = 20_000;
/// How much of the end of the audit log is read.
const AUDIT_TAIL: u64 = 1 << 20;

/// The system call number of the seccomp kill of `pid` in the kernel log (`/dev/kmsg`, where
/// the kernel writes audit records when no audit daemon takes them) or auditd's log.
fn kill_record(pid: i32) -> Option<i64> {
    use std::io::{Read, Seek, SeekFrom};
    let wanted = format!(" pid={pid} ");
    let parse = |line: &str| -> Option<i64> {
        if !line.contains("type=1326") || !line.contains(&wanted) {
            return None;
        }
        let rest = &line[line.find(" syscall=")? + 9..];
        rest.split(' ').next()?.parse().ok()
    };
    let mut found = None;
    if let Ok(mut kmsg) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open("/dev/kmsg")
    {
        // One record per read; EAGAIN at the end of the buffer.
        let mut buf = vec![0u8; 8192];
        for _ in 0..MAX_RECORDS {
            match kmsg.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(number) = parse(&String::from_utf8_lossy(&buf[..n])) {
                        found = Some(number);
                    }
                }
                Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
    }
    if found.is_some() {
        return found;
    }
    let mut audit = std::fs::File::open("/var/log/audit/audit.log").ok()?;
    let len = audit.metadata().ok()?.len();
    audit
        .seek(SeekFrom::Start(len.saturating_sub(AUDIT_TAIL)))
        .ok()?;
    let mut text = Vec::new();
    audit.take(AUDIT_TAIL).read_to_end(&mut text).ok()?;
    String::from_utf8_lossy(&text).lines().rev().find_map(parse)
}

/// The names of the system calls a compromised process would most likely try.
fn syscall_name(number: i64) -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        use nix::libc::*;
        let known: &[(i64, &str)] = &[
            (SYS_execve, "execve"),
            (SYS_execveat, "execveat"),
            (SYS_ptrace, "ptrace"),
            (SYS_socket, "socket"),
            (SYS_connect, "connect"),
            (SYS_open, "open"),
            (SYS_openat, "openat"),
            (SYS_mount, "mount"),
            (SYS_unshare, "unshare"),
            (SYS_setns, "setns"),
            (SYS_setuid, "setuid"),
            (SYS_setresuid, "setresuid"),
            (SYS_kill, "kill"),
            (SYS_fork, "fork"),
            (SYS_vfork, "vfork"),
            (SYS_clone, "clone"),
            (SYS_chroot, "chroot"),
            (SYS_bpf, "bpf"),
            (SYS_prctl, "prctl"),
            (SYS_seccomp, "seccomp"),
        ];
        known.iter().find(|(n, _)| *n == number).map(|(_, s)| *s)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = number;
        None
    }
}
