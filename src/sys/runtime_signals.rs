//! tokio's signal state, made once in the session spawner so that sessions share it instead of
//! each building its own.
//!
//! tokio's `signal` and `process` features are on in this binary (the master waits for SIGTERM
//! and SIGHUP and for its children; libunftp turns `process` on as well), so the first runtime
//! with I/O in a process builds a registry of every signal number — 64 entries on Linux, each
//! with a watch channel, about 25 KiB of heap — and a Unix socket pair its signal handlers
//! would write to. Every pre-login process and every worker runs one runtime, and nothing in
//! them waits for a signal. [`preload`] builds that state in the spawner, before any session is
//! forked: the registry is inherited copy-on-write and never written (no session installs a
//! signal handler), so all sessions share its pages.
//!
//! The socket pair must not be shared: a process that inherited it calls [`renew`] right after
//! its fork, which puts a fresh pair of its own at the same two descriptor numbers (the numbers
//! tokio's registry holds), and keeps those two numbers open from then on. No session can then
//! wake another's runtime, or the spawner's.
//!
//! What it must never do: let a session keep the spawner's pair, or leave one of the two
//! numbers pointing at anything but this process's own fresh sockets.

use std::collections::BTreeSet;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use nix::fcntl::{F_GETFD, OFlag, fcntl};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, getsockopt, socketpair, sockopt};

/// The two descriptor numbers of tokio's signal socket pair, once [`preload`] made it here (and
/// in every process forked from here since).
static PAIR: OnceLock<[RawFd; 2]> = OnceLock::new();

/// Build tokio's process-wide signal state now, in this single-threaded process, and note the
/// two descriptors it opened. An error means this tokio does not keep that state the way this
/// module expects; sessions forked from here would then hold descriptors nobody accounts for,
/// so the caller must not fork sessions after an error.
pub fn preload() -> io::Result<()> {
    if PAIR.get().is_some() {
        return Ok(());
    }
    let before: BTreeSet<RawFd> = super::listed_open_fds()?.into_iter().collect();
    // The runtime's own epoll and eventfd close with it; the signal state stays for good.
    drop(
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?,
    );
    let opened: Vec<RawFd> = super::listed_open_fds()?
        .into_iter()
        .filter(|fd| !before.contains(fd))
        .collect();
    let [first, second] = opened[..] else {
        return Err(io::Error::other(format!(
            "tokio's signal state opened {opened:?}, not two descriptors"
        )));
    };
    for fd in [first, second] {
        // SAFETY: `fd` was just listed as open and nothing closes it while it is borrowed here.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        if getsockopt(&borrowed, sockopt::SockType).ok() != Some(SockType::Stream) {
            return Err(io::Error::other(format!(
                "tokio's signal descriptor {fd} is not a stream socket"
            )));
        }
    }
    let _ = PAIR.set([first, second]);
    Ok(())
}

/// The two numbers [`preload`] found, when this process is or descends from the spawner that
/// preloaded them: a process forked from there must [`renew`] them and keep them open.
pub fn inherited() -> Option<[RawFd; 2]> {
    PAIR.get().copied()
}

/// Replace the inherited signal socket pair with a fresh one of this process's own, at the same
/// two numbers; returns the numbers this process must keep open (none when nothing was
/// inherited). Call right after a fork, while single-threaded, before this process runs a
/// runtime.
pub fn renew() -> io::Result<Vec<RawFd>> {
    let Some(numbers) = inherited() else {
        return Ok(Vec::new());
    };
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
    )?;
    for (fresh, number) in [(a, numbers[0]), (b, numbers[1])] {
        // SAFETY: borrowed only to test that the inherited number is still open.
        if fcntl(unsafe { BorrowedFd::borrow_raw(number) }, F_GETFD).is_err() {
            return Err(io::Error::other(format!(
                "the inherited signal descriptor {number} is closed"
            )));
        }
        // SAFETY: `number` is open (checked above) and is one of the two descriptors tokio's
        // inherited registry owns for the life of the process; it is only ever replaced in
        // place (dup3 closes the old socket and reuses the number atomically), never closed:
        // the ManuallyDrop keeps this temporary owner from closing it.
        let mut target = ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(number) });
        nix::unistd::dup3(fresh.as_fd(), &mut target, OFlag::O_CLOEXEC)?;
    }
    Ok(numbers.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRESH: &str = "sys::runtime_signals::tests::in_a_fresh_process";

    /// [`in_a_fresh_process`] needs a process in which no runtime was ever built (other unit
    /// tests build runtimes in this one): it runs in a new copy of this test binary.
    #[test]
    fn preloaded_state_is_renewed_in_place_and_runtimes_still_work() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args(["--exact", FRESH, "--ignored", "--test-threads=1"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run by the test above, alone in its own process.
    #[test]
    #[ignore = "run by preloaded_state_is_renewed_in_place_and_runtimes_still_work, alone in a new process"]
    fn in_a_fresh_process() {
        preload().unwrap();
        let [a, b] = inherited().expect("preload notes the pair");
        let target = |fd: RawFd| std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        let old = (target(a), target(b));
        assert!(old.0.to_string_lossy().starts_with("socket:"), "{old:?}");
        assert_eq!(renew().unwrap(), vec![a, b]);
        let new = (target(a), target(b));
        assert!(new.0 != old.0 && new.1 != old.1, "{old:?} -> {new:?}");
        assert!(new.0.to_string_lossy().starts_with("socket:"), "{new:?}");
        // A second preload changes nothing; a runtime built after the renewal works.
        preload().unwrap();
        assert_eq!(inherited(), Some([a, b]));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { tokio::time::sleep(std::time::Duration::from_millis(1)).await });
        drop(rt);
        // The renewed pair is connected: a byte written to one end arrives at the other.
        // SAFETY: both numbers stay open for the life of the process (tokio's registry).
        let (ea, eb) = unsafe { (BorrowedFd::borrow_raw(a), BorrowedFd::borrow_raw(b)) };
        assert_eq!(nix::unistd::write(ea, b"x").unwrap(), 1);
        let mut byte = [0u8; 1];
        assert_eq!(nix::unistd::read(eb, &mut byte).unwrap(), 1);
    }
}
