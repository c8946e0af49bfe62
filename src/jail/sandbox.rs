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

/// The spawner's handle on PID namespaces: each monitor starts a new one. The process that
/// forks a monitor (the template's short-lived intermediate one) enters it and exits, so no
/// process ever needs to return to the spawner's namespace.
pub struct PidNamespaces {
    _checked: (),
}

impl PidNamespaces {
    /// Check, before any session, that this kernel has PID namespaces.
    pub fn open() -> std::io::Result<PidNamespaces> {
        std::fs::File::open("/proc/self/ns/pid")?;
        Ok(PidNamespaces { _checked: () })
    }

    /// Make this process's next child the first process of a new PID namespace (once per
    /// process: a second `unshare(CLONE_NEWPID)` is refused).
    pub fn next_child_in_new(&self) -> nix::Result<()> {
        nix::sched::unshare(CloneFlags::CLONE_NEWPID)
    }
}
