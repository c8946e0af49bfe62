//! Starting one of rftpd's own helper processes (the spawner, the metrics endpoint): fork+exec
//! of `/proc/self/exe <role>` with an emptied environment, its channel to the master a
//! `SOCK_SEQPACKET` pair (the child's end on its stdin), stdout to /dev/null, stderr shared.
//!
//! It passes on only what the caller names plus the two variables every role reads the same
//! way: `TZ` (the records' time zone, `use_localtime`) and `JOURNAL_STREAM` (whether stderr is
//! the journal, `crate::logging`). It never passes the master's own environment whole.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::Stdio;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

/// `rftpd <role>` ready to spawn, and the master's end of its channel (non-blocking).
pub struct Launch {
    pub command: tokio::process::Command,
    pub master_end: OwnedFd,
}

/// Prepare `rftpd <role>` with exactly `env` (plus `TZ` and `JOURNAL_STREAM` when the master
/// has them).
pub fn prepare(role: &str, env: &[(&str, &str)]) -> io::Result<Launch> {
    let (master_end, child_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    // Only the master's end is non-blocking; the child waits on its end with poll().
    fcntl(&master_end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    let mut command = std::process::Command::new("/proc/self/exe");
    command
        .arg0("rftpd")
        .arg(role)
        .env_clear()
        .stdin(Stdio::from(child_end))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (name, value) in env {
        command.env(name, value);
    }
    for inherited in ["TZ", "JOURNAL_STREAM"] {
        if let Some(value) = std::env::var_os(inherited) {
            command.env(inherited, value);
        }
    }
    Ok(Launch {
        command: tokio::process::Command::from(command),
        master_end,
    })
}
