//! Root → `nopriv_user`: the sandbox the pre-login process enters before it reads the client's
//! first byte (vsftpd's unprivileged pre-login process, OpenSSH's privsep child), and the
//! metrics endpoint (`crate::metrics`) before it accepts a connection.
//!
//! In this order: a network namespace with nothing in it (the spawner's, shared by every
//! pre-login process, or else one of its own); every descriptor closed
//! but its two sockets (and 0–2); no core files and no processes (`RLIMIT_NPROC` 0); chroot
//! into the empty, root-owned `secure_chroot_dir`; the capability bounding set emptied; no
//! supplementary groups, the account's gid and uid for good; every capability set cleared;
//! the drop proved; `no_new_privs`; not dumpable (so no other process of the same account can
//! ptrace it or read its memory); killed with its monitor; its seccomp allow-list
//! (`crate::jail::seccomp`), last. Any failure aborts the process:
//! a half-dropped pre-login process must never read a byte.

use std::os::fd::RawFd;
use std::path::Path;

use nix::unistd::{Gid, Uid};

/// The unprivileged account, resolved by the monitor (outside any jail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

fn die(step: &str, err: impl std::fmt::Display) -> ! {
    tracing::error!(step, error = %err, "unprivileged sandbox step failed; aborting");
    std::process::abort();
}

/// What the sandbox is made of, from the configuration.
pub struct Layers {
    /// Enter an empty network namespace (`isolate_network`).
    pub network: bool,
    /// Install the role's seccomp allow-list (`seccomp_sandbox`).
    pub seccomp: bool,
    /// Whose list: the pre-login process's, or the metrics endpoint's (the same plus
    /// `accept4`).
    pub role: super::seccomp::Role,
}

/// Enter the sandbox for good. `keep`: the descriptors that survive (the client's socket and
/// the monitor channel). `parent`: the monitor's pid, to die with it.
pub fn enter(
    account: Account,
    empty_dir: &Path,
    empty_net: Option<std::os::fd::BorrowedFd<'_>>,
    layers: Layers,
    keep: &[RawFd],
    parent: nix::unistd::Pid,
) {
    // SECURITY: no network but the sockets it was given (a compromised pre-login process can
    // reach nothing else): the spawner's empty namespace, or one of its own.
    let entered = match (layers.network, empty_net) {
        (false, _) => Ok(()),
        (true, Some(fd)) => nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET),
        (true, None) => nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET),
    };
    if let Err(e) = entered {
        die("network namespace", e);
    }
    if let Err(e) = crate::sys::close_all_fds_except(keep) {
        die("close descriptors", e);
    }
    use nix::sys::resource::{Resource, setrlimit};
    if let Err((what, e)) = super::sandbox::limit_prelogin() {
        die(what, e);
    }
    if let Err(e) = crate::sys::drop_capability_bounding_set() {
        die("PR_CAPBSET_DROP", e);
    }
    if let Err(e) = nix::unistd::chroot(empty_dir) {
        die("chroot(secure_chroot_dir)", e);
    }
    if let Err(e) = nix::unistd::chdir("/") {
        die("chdir(/)", e);
    }
    let uid = Uid::from_raw(account.uid);
    let gid = Gid::from_raw(account.gid);
    if uid.is_root() {
        die("nopriv_user", "is uid 0");
    }
    if let Err((step, e)) = super::become_for_good(uid, gid, &[]) {
        die(step, e);
    }
    super::verify_dropped(uid, gid);
    match crate::sys::has_capabilities() {
        Ok(false) => {}
        Ok(true) => die("verify capabilities", "a capability survived the drop"),
        Err(e) => die("capget", e),
    }
    if let Err(e) = nix::sys::prctl::set_no_new_privs() {
        die("PR_SET_NO_NEW_PRIVS", e);
    }
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        die("PR_SET_DUMPABLE", e);
    }
    // SECURITY: it can start no process (or thread) at all.
    if let Err(e) = setrlimit(Resource::RLIMIT_NPROC, 0, 0) {
        die("RLIMIT_NPROC", e);
    }
    super::die_with_parent(parent);
    // SECURITY: the last step, before the first byte is read: from here on, a system call
    // outside the pre-login list kills the process.
    if layers.seccomp
        && let Err(e) = super::seccomp::install(layers.role)
    {
        die("seccomp", e);
    }
}
