//! The per-session container around the three roles: resource limits for each role (always)
//! and the session's PID, IPC, UTS and mount namespaces (`isolate`).
//!
//! Namespaces: the spawner forks each monitor into a new PID namespace ([`PidNamespaces`]), so
//! the monitor is its process 1: the session's processes see only each other, cannot signal
//! another session's (before, every pre-login process ran as `nopriv_user` and could signal
//! every other one), and when the monitor ends the kernel ends the rest. Process 1 gets no
//! signal it has no handler for from inside its namespace, which suits the monitor: only the
//! spawner (outside) signals it, and SIGKILL always arrives. The monitor then enters new IPC,
//! UTS and mount namespaces ([`enter_session_namespaces`]) and makes every mount private, so
//! nothing mounted on the host later propagates into the session (nor the other way). The
//! pre-login process's chroot is empty, a jailed worker's holds only what is under the home.
//!
//! What it must never do: leave a role without its limits, or run a session half-isolated
//! (any failure here ends the session).

use std::os::fd::OwnedFd;

use nix::sched::CloneFlags;
use nix::sys::resource::{Resource, setrlimit};

use crate::config::Config;

const MIB: u64 = 1024 * 1024;

/// The pre-login process's descriptors: fds 0–2, its client, its channel and a copy of it,
/// the runtime's epoll and waker, the link to the worker.
const PRELOGIN_FILES: u64 = 32;
/// Its address space: a current-thread runtime and one TLS connection.
const PRELOGIN_ADDRESS_SPACE: u64 = 256 * MIB;
/// The monitor's descriptors: its channels, the passive listener, a data socket, PAM's files.
const MONITOR_FILES: u64 = 256;
/// The monitor's address space: PAM, NSS, the password hash, TLS signing.
const MONITOR_ADDRESS_SPACE: u64 = 1024 * MIB;

fn set(resource: Resource, limit: u64) -> Result<(), (&'static str, nix::Error)> {
    setrlimit(resource, limit, limit).map_err(|e| (resource_name(resource), e))
}

fn resource_name(resource: Resource) -> &'static str {
    match resource {
        Resource::RLIMIT_CORE => "RLIMIT_CORE",
        Resource::RLIMIT_NOFILE => "RLIMIT_NOFILE",
        Resource::RLIMIT_NPROC => "RLIMIT_NPROC",
        Resource::RLIMIT_AS => "RLIMIT_AS",
        Resource::RLIMIT_FSIZE => "RLIMIT_FSIZE",
        _ => "rlimit",
    }
}

/// The monitor's limits, set before it forks (both children start from them). No core files
/// (its memory holds a password for a moment). `RLIMIT_NPROC` does not bind root; it is there
/// so that anything PAM starts and drops to a user starts limited.
pub fn limit_monitor(config: &Config) -> Result<(), (&'static str, nix::Error)> {
    set(Resource::RLIMIT_CORE, 0)?;
    set(Resource::RLIMIT_NOFILE, MONITOR_FILES)?;
    set(Resource::RLIMIT_AS, MONITOR_ADDRESS_SPACE)?;
    set(
        Resource::RLIMIT_NPROC,
        u64::from(config.worker_max_processes),
    )
}

/// The pre-login process's limits (its `RLIMIT_NPROC` 0 is set by `nopriv` after the id
/// change, which checks it). It writes no file: `RLIMIT_FSIZE` 0, unless its standard error
/// (the log) is a regular file, which the limit would make it die writing to.
pub fn limit_prelogin() -> Result<(), (&'static str, nix::Error)> {
    set(Resource::RLIMIT_CORE, 0)?;
    set(Resource::RLIMIT_NOFILE, PRELOGIN_FILES)?;
    set(Resource::RLIMIT_AS, PRELOGIN_ADDRESS_SPACE)?;
    let log_is_file = nix::sys::stat::fstat(std::io::stderr())
        .map(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFREG)
        .unwrap_or(false);
    if !log_is_file {
        set(Resource::RLIMIT_FSIZE, 0)?;
    }
    Ok(())
}

/// The worker's limits, from the configuration (it writes files: no `RLIMIT_FSIZE`).
pub fn limit_worker(config: &Config) -> Result<(), (&'static str, nix::Error)> {
    set(Resource::RLIMIT_CORE, 0)?;
    set(
        Resource::RLIMIT_NOFILE,
        u64::from(config.worker_max_open_files),
    )?;
    set(
        Resource::RLIMIT_NPROC,
        u64::from(config.worker_max_processes),
    )?;
    set(
        Resource::RLIMIT_AS,
        u64::from(config.worker_max_memory_mb) * MIB,
    )
}

/// New IPC, UTS and mount namespaces for this session, every mount private. The monitor calls
/// it first, while it is single-threaded and before it forks.
pub fn enter_session_namespaces() -> nix::Result<()> {
    use nix::mount::{MsFlags, mount};
    nix::sched::unshare(
        CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWNS,
    )?;
    // SECURITY: no mount event crosses between the host and the session, either way.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
}

/// The spawner's handle on PID namespaces: each monitor it forks starts a new one.
pub struct PidNamespaces {
    /// The spawner's own PID namespace, to return to after each fork.
    own: OwnedFd,
}

impl PidNamespaces {
    /// Open the spawner's own PID namespace (before any fork).
    pub fn open() -> std::io::Result<PidNamespaces> {
        let own = std::fs::File::open("/proc/self/ns/pid")?;
        Ok(PidNamespaces { own: own.into() })
    }

    /// Make the next child the first process of a new PID namespace.
    pub fn next_child_in_new(&self) -> nix::Result<()> {
        nix::sched::unshare(CloneFlags::CLONE_NEWPID)
    }

    /// Children after this one start in the spawner's own namespace again (a second
    /// `unshare(CLONE_NEWPID)` is refused until then).
    pub fn restore(&self) -> nix::Result<()> {
        nix::sched::setns(&self.own, CloneFlags::CLONE_NEWPID)
    }
}
