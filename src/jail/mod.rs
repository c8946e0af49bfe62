//! Login → jail → drop: the one recipe that turns a root worker into a user's jailed session.
//!
//! Called exactly once per session, by the worker the monitor forked for a login it accepted,
//! before the worker reads anything. Order: chroot into the directory fd the monitor passed (never a path),
//! then supplementary groups, gid, uid (the libc wrappers, which change every thread), then
//! prove the drop holds, then `no_new_privs`. Any failure aborts the process: a half-jailed
//! worker must never serve another command. Nothing here reads a file inside the jail.

use std::os::fd::{AsFd, OwnedFd};

use nix::unistd::{Gid, Uid};

use crate::protocol::monitor::Grant;

pub mod netns;
pub mod nopriv;
pub mod probe;
pub mod sandbox;
pub mod seccomp;

/// Log why the jail failed and kill this process. Never returns, never lets the client retry.
fn die(step: &str, err: impl std::fmt::Display) -> ! {
    tracing::error!(step, error = %err, "jail step failed; aborting the session");
    std::process::abort();
}

/// Jail (when `grant.jailed`) into `dir` and become the user for good.
pub fn enter(grant: &Grant, dir: OwnedFd) {
    // No capability can ever come back, whatever the process executes (reads /proc: first).
    if let Err(e) = crate::sys::drop_capability_bounding_set() {
        die("PR_CAPBSET_DROP", e);
    }
    if let Err(e) = nix::unistd::fchdir(dir.as_fd()) {
        die("fchdir(start directory)", e);
    }
    if grant.jailed {
        if let Err(e) = nix::unistd::chroot(".") {
            die("chroot", e);
        }
        if let Err(e) = nix::unistd::chdir("/") {
            die("chdir(/)", e);
        }
    }
    drop(dir);

    let uid = Uid::from_raw(grant.uid);
    let gid = Gid::from_raw(grant.gid);
    let groups: Vec<Gid> = grant.groups.iter().copied().map(Gid::from_raw).collect();
    if let Err((step, e)) = become_for_good(uid, gid, &groups) {
        die(step, e);
    }
    verify_dropped(uid, gid);
    if let Err(e) = nix::sys::prctl::set_no_new_privs() {
        die("PR_SET_NO_NEW_PRIVS", e);
    }
}

/// Supplementary groups, then gid, then uid (all three each, via the libc wrappers, which
/// change every thread), then every capability set cleared. Returns the step that failed; the
/// caller aborts the process.
pub(crate) fn become_for_good(
    uid: Uid,
    gid: Gid,
    groups: &[Gid],
) -> Result<(), (&'static str, std::io::Error)> {
    nix::unistd::setgroups(groups).map_err(|e| ("setgroups", e.into()))?;
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| ("setresgid", e.into()))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| ("setresuid", e.into()))?;
    crate::sys::clear_capabilities().map_err(|e| ("capset", e))
}

/// Be killed when the monitor goes (set after the id change, which clears the setting), and
/// make sure it has not already gone.
pub fn die_with_parent(parent: nix::unistd::Pid) {
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        die("PR_SET_PDEATHSIG", e);
    }
    if nix::unistd::getppid() != parent {
        die("parent check", "the monitor is gone");
    }
}

/// All three uids and gids must be the user's, and root must be out of reach.
pub(crate) fn verify_dropped(uid: Uid, gid: Gid) {
    match nix::unistd::getresuid() {
        Ok(r) if r.real == uid && r.effective == uid && r.saved == uid => {}
        Ok(r) => die("verify uids", format!("{r:?}")),
        Err(e) => die("getresuid", e),
    }
    match nix::unistd::getresgid() {
        Ok(r) if r.real == gid && r.effective == gid && r.saved == gid => {}
        Ok(r) => die("verify gids", format!("{r:?}")),
        Err(e) => die("getresgid", e),
    }
    if !uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        die(
            "verify drop",
            "setuid(0) succeeded after dropping privileges",
        );
    }
}

/// Whether the current process (already dropped) may write to `/` — its jail root. Asked as
/// the user, after the drop, so permission bits, ACLs and read-only mounts all count.
pub fn root_is_writable() -> bool {
    nix::unistd::access("/", nix::unistd::AccessFlags::W_OK).is_ok()
}
