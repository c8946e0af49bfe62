//! Each role's seccomp allow-list applied in a process of its own (`rftpd seccomp-probe ROLE
//! ACTION [DIR]`), as the issue asks: killed (SIGSYS) on the system calls the role must never
//! make — `execve`, `ptrace`, `socket(AF_INET/AF_INET6)`, `bind`, `connect`, `mount`,
//! `unshare`, `setuid`, a fork, and in the pre-login process `open` of a file — and letting its
//! normal work through (for the worker: threads, files, and a stand-in listener with its
//! connection queued, as the monitor makes them).

mod common;

use std::process::Command;

use common::{RFTPD, TempDir, lossy};

/// Run the probe: `Ok(output)` when the action was allowed, `Err(signal)` when it was killed.
fn probe(role: &str, action: &str, dir: &TempDir) -> Result<String, i32> {
    use std::os::unix::process::ExitStatusExt;
    let out = Command::new(RFTPD)
        .args(["seccomp-probe", role, action])
        .arg(dir.join(""))
        .output()
        .expect("run rftpd seccomp-probe");
    match out.status.signal() {
        Some(signal) => Err(signal),
        None => {
            assert!(
                out.status.success(),
                "{role} {action}: {:?} {}",
                out.status,
                lossy(&out.stderr)
            );
            Ok(lossy(&out.stdout))
        }
    }
}

const SIGSYS: i32 = 31;

#[test]
fn each_roles_filter_kills_what_it_must_never_do_and_allows_its_work() {
    let dir = TempDir::new();
    let never = [
        "execve",
        "ptrace",
        "mount",
        "unshare",
        "setuid",
        "fork",
        "socket-inet",
        "socket-inet6",
        "bind",
        "connect",
    ];
    for role in ["prelogin", "metrics", "worker"] {
        for action in never {
            assert_eq!(probe(role, action, &dir), Err(SIGSYS), "{role} {action}");
        }
        let work = probe(role, "work", &dir).unwrap_or_else(|s| panic!("{role} work: signal {s}"));
        assert_eq!(work.trim(), "allowed: ok", "{role} work");
    }
    // Neither role makes, binds or connects a network socket (the worker's, stand-ins included,
    // are all made by the monitor; its `work` above listens and accepts on such a stand-in);
    // the pre-login process opens no file, the worker opens files in its jail.
    assert_eq!(probe("prelogin", "open", &dir), Err(SIGSYS));
    // Nor does the metrics endpoint: it only accepts on the socket the master bound.
    assert_eq!(probe("metrics", "open", &dir), Err(SIGSYS));
    assert!(probe("worker", "open", &dir).is_ok());
}
