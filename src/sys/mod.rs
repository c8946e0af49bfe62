//! The only module with `unsafe` code: thin, documented wrappers around the few system and FFI
//! calls that have no safe binding in `nix` or `pam-client2`.
//!
//! Every wrapper here is a safe function whose preconditions are either checked at run time or
//! hold by construction; each `unsafe` block says why in its `// SAFETY:` line. Nothing in this
//! module makes policy decisions — callers decide *whether* to fork or jail, this module only
//! makes the call correctly.

use std::io;

use pam_client2::{Context, ConversationHandler};

/// The result of [`fork_single_threaded`], seen from each side.
pub enum Forked {
    /// We are the new child process.
    Child,
    /// We are the parent; the child has this pid.
    Parent(nix::unistd::Pid),
}

/// Number of threads in this process, from `/proc/self/task`.
fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// `fork()`, refused unless this process has exactly one thread.
///
/// Forking a multi-threaded process leaves the child with locks held by threads that no longer
/// exist; with one thread there is nothing to leave behind, so the child may run any code.
pub fn fork_single_threaded() -> io::Result<Forked> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(io::Error::other(format!(
            "refusing to fork a process with {threads} threads"
        )));
    }
    // SAFETY: the check above proves this process has a single thread, so the child inherits no
    // lock held by another thread and may safely run arbitrary (allocating) code.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
    }
}

/// PAM's `PAM_FAIL_DELAY` item: a callback that replaces the built-in sleep after a failed
/// authentication. Ours does nothing, so the server — not a PAM module — decides how long a
/// client waits for its `530`, and does so without blocking anything else.
const PAM_FAIL_DELAY: std::os::raw::c_int = 10;

extern "C" fn no_fail_delay(
    _retval: std::os::raw::c_int,
    _usec_delay: std::os::raw::c_uint,
    _appdata: *mut std::ffi::c_void,
) {
}

/// Install [`no_fail_delay`] as the PAM context's fail-delay callback.
pub fn disable_pam_fail_delay<C: ConversationHandler>(ctx: &mut Context<C>) -> io::Result<()> {
    let callback: extern "C" fn(std::os::raw::c_int, std::os::raw::c_uint, *mut std::ffi::c_void) =
        no_fail_delay;
    // SAFETY: for PAM_FAIL_DELAY, Linux-PAM stores the value as a function pointer of exactly this
    // signature (`void (*)(int, unsigned, void *)`); the function is a plain `extern "C"` fn with a
    // 'static lifetime that never unwinds and ignores its arguments.
    unsafe { ctx.set_item(PAM_FAIL_DELAY, callback as *const std::ffi::c_void) }
        .map_err(|e| io::Error::other(format!("PAM_FAIL_DELAY: {e}")))
}

/// Send one message on a `SOCK_SEQPACKET` socket, with an optional file descriptor attached
/// (`SCM_RIGHTS`).
pub fn send_message(
    socket: std::os::fd::BorrowedFd<'_>,
    bytes: &[u8],
    fd: Option<std::os::fd::BorrowedFd<'_>>,
) -> io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};
    use std::os::fd::AsRawFd;
    let raw = fd.map(|f| [f.as_raw_fd()]);
    let cmsgs: Vec<ControlMessage<'_>> = raw
        .as_ref()
        .map(|r| ControlMessage::ScmRights(r))
        .into_iter()
        .collect();
    let iov = [std::io::IoSlice::new(bytes)];
    let sent = sendmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &iov,
        &cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    if sent != bytes.len() {
        return Err(io::Error::other("short send on a message socket"));
    }
    Ok(())
}

/// Receive one message from a `SOCK_SEQPACKET` socket into `buf`, taking ownership of at most
/// one passed file descriptor. Returns the message length (0 = the peer closed) and the fd.
/// A message longer than `buf`, or one carrying more than one descriptor, is an error (and
/// every descriptor that did arrive is closed).
pub fn recv_message(
    socket: std::os::fd::BorrowedFd<'_>,
    buf: &mut [u8],
) -> io::Result<(usize, Option<std::os::fd::OwnedFd>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixAddr, recvmsg};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let mut cmsg_space = nix::cmsg_space!([std::os::fd::RawFd; 2]);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = recvmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg_space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw_fds) = cmsg {
            for raw in raw_fds {
                // SAFETY: the kernel just installed this descriptor in our table for us
                // (SCM_RIGHTS); nothing else in the process knows its number, so we are its
                // single owner.
                fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
    }
    let truncated = msg
        .flags
        .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
    let len = msg.bytes;
    if truncated || fds.len() > 1 {
        return Err(io::Error::other(
            "oversized message or too many descriptors",
        ));
    }
    Ok((len, fds.pop()))
}

/// Take ownership of file descriptor 0, where the master put this session's client socket
/// (inetd style), as a `TcpStream`. Fails if fd 0 is not a connected socket.
pub fn take_client_socket_from_stdin() -> io::Result<std::net::TcpStream> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let stdin = std::io::stdin();
    let raw = stdin.as_raw_fd();
    // Prove fd 0 is open and is a socket before claiming it.
    let kind: nix::sys::socket::SockType =
        nix::sys::socket::getsockopt(&stdin, nix::sys::socket::sockopt::SockType)?;
    if kind != nix::sys::socket::SockType::Stream {
        return Err(io::Error::other("fd 0 is not a stream socket"));
    }
    // SAFETY: fd 0 is open (getsockopt just succeeded on it) and this process never uses stdin
    // for anything else, so the OwnedFd becomes its single owner.
    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
    let stream = std::net::TcpStream::from(owned);
    stream.peer_addr()?;
    Ok(stream)
}

/// Take ownership of a descriptor this process inherited at exec (systemd socket activation),
/// marking it close-on-exec so no session process inherits it.
///
/// Only for descriptors the caller has proved are meant for this process (systemd's
/// `LISTEN_PID` equals our pid), and each number at most once.
pub fn take_inherited_fd(raw: std::os::fd::RawFd) -> io::Result<std::os::fd::OwnedFd> {
    use nix::fcntl::{F_GETFD, F_SETFD, FdFlag, fcntl};
    use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
    if raw < 3 {
        return Err(io::Error::other(format!("fd {raw} is not a passed socket")));
    }
    // SAFETY: borrowed only for the two fcntl calls below; if `raw` is not open, F_GETFD fails
    // with EBADF and we return before claiming it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    fcntl(borrowed, F_GETFD)?;
    fcntl(borrowed, F_SETFD(FdFlag::FD_CLOEXEC))?;
    // SAFETY: the descriptor is open (checked above) and was handed to this process by its
    // parent for exactly this use; the caller claims each number once, so this is its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}
