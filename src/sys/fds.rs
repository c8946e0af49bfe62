//! Descriptors: messages with descriptors attached on the session's `SOCK_SEQPACKET`
//! channels (`SCM_RIGHTS`, blocking and async), taking over the descriptors systemd or the
//! spawner passed, finding a connected data socket, and closing what a process must not keep.
//!
//! Runs in every role (it is the channel between them). It must never accept a descriptor it
//! was not asked for silently (callers check what arrived), nor leave an inherited descriptor
//! open across a privilege boundary.

use std::io;

/// Send one message on a `SOCK_SEQPACKET` socket, with an optional file descriptor attached
/// (`SCM_RIGHTS`).
pub fn send_message(
    socket: std::os::fd::BorrowedFd<'_>,
    bytes: &[u8],
    fd: Option<std::os::fd::BorrowedFd<'_>>,
) -> io::Result<()> {
    match fd {
        Some(fd) => send_message_fds(socket, bytes, &[fd]),
        None => send_message_fds(socket, bytes, &[]),
    }
}

/// Send one message on a `SOCK_SEQPACKET` socket with these file descriptors attached
/// (`SCM_RIGHTS`; none: a plain message).
pub fn send_message_fds(
    socket: std::os::fd::BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};
    use std::os::fd::AsRawFd;
    const MAX: usize = 4;
    if fds.len() > MAX {
        return Err(io::Error::other("too many descriptors for one message"));
    }
    let mut raw = [-1; MAX];
    for (slot, fd) in raw.iter_mut().zip(fds) {
        *slot = fd.as_raw_fd();
    }
    let rights = [ControlMessage::ScmRights(&raw[..fds.len()])];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    let iov = [std::io::IoSlice::new(bytes)];
    let sent = sendmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &iov,
        cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    if sent != bytes.len() {
        return Err(io::Error::other("short send on a message socket"));
    }
    Ok(())
}

/// Receive one message from a `SOCK_SEQPACKET` socket into `buf` together with exactly
/// `N` (at most 4) passed descriptors, using nothing but the stack (no allocation: the
/// spawner's template process must not write its heap). A message longer than `buf`, or
/// carrying any other number of descriptors, is an error, and every descriptor that did
/// arrive is closed. A closed peer is `Ok((0, None))`.
pub fn recv_message_exact_fds<const N: usize>(
    socket: std::os::fd::BorrowedFd<'_>,
    buf: &mut [u8],
) -> io::Result<(usize, Option<[std::os::fd::OwnedFd; N]>)> {
    use nix::libc;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    /// Room for one `SCM_RIGHTS` header and 4 descriptors, aligned for `cmsghdr`.
    #[repr(C, align(8))]
    struct Control([u8; 64]);
    const MAX_FDS: usize = 4;
    const { assert!(N <= MAX_FDS) };
    let mut control = Control([0; 64]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid empty value, and every pointer field
    // is set below to memory that outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len() as _;
    let received = loop {
        // SAFETY: `msg` points at `iov` (into `buf`, `buf.len()` bytes) and `control` (64
        // bytes), both live and exclusively borrowed for the call; the kernel writes no more
        // than the lengths given.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut taken: [Option<OwnedFd>; MAX_FDS] = [None, None, None, None];
    let mut count = 0;
    let mut foreign = false;
    // SAFETY: `msg` was filled in by recvmsg; CMSG_FIRSTHDR/CMSG_NXTHDR only walk within
    // `msg_control`/`msg_controllen`, which the kernel set to the part it wrote.
    let mut header = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !header.is_null() {
        // SAFETY: a non-null header from CMSG_FIRSTHDR/CMSG_NXTHDR lies whole in `control`.
        let h = unsafe { &*header };
        if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN(0) is a constant computation.
            let data_len =
                (h.cmsg_len as usize).saturating_sub(unsafe { libc::CMSG_LEN(0) } as usize);
            // SAFETY: CMSG_DATA points at the header's payload, `data_len` bytes of `control`.
            let data = unsafe { libc::CMSG_DATA(header) };
            for i in 0..data_len / std::mem::size_of::<libc::c_int>() {
                // SAFETY: within the payload; it may be unaligned, hence read_unaligned.
                let raw = unsafe { std::ptr::read_unaligned(data.cast::<libc::c_int>().add(i)) };
                // SAFETY: the kernel just installed this descriptor in our table for us
                // (SCM_RIGHTS); nothing else in the process knows its number, so we are its
                // single owner. Dropped (closed) unless it is one we asked for.
                let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                if count < MAX_FDS {
                    taken[count] = Some(fd);
                }
                count += 1;
            }
        } else {
            foreign = true;
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        header = unsafe { libc::CMSG_NXTHDR(&msg, header) };
    }
    let truncated = msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0;
    if received == 0 && count == 0 && !truncated {
        return Ok((0, None));
    }
    if truncated || foreign || count != N {
        return Err(io::Error::other(
            "oversized message or the wrong number of descriptors",
        ));
    }
    let fds: [OwnedFd; N] = std::array::from_fn(|i| taken[i].take().expect("counted above"));
    Ok((received, Some(fds)))
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

/// Take ownership of file descriptor 0, where the master put this process's channel (the
/// spawner's `SOCK_SEQPACKET` socket), checking it is a socket of the `expected` type.
pub fn take_stdin_socket(expected: nix::sys::socket::SockType) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let stdin = std::io::stdin();
    let raw = stdin.as_raw_fd();
    // Prove fd 0 is open and is a socket of the right kind before claiming it.
    let kind: nix::sys::socket::SockType =
        nix::sys::socket::getsockopt(&stdin, nix::sys::socket::sockopt::SockType)?;
    if kind != expected {
        return Err(io::Error::other(format!(
            "fd 0 is a {kind:?} socket, not {expected:?}"
        )));
    }
    // SAFETY: fd 0 is open (getsockopt just succeeded on it) and this process never uses stdin
    // for anything else, so the OwnedFd becomes its single owner.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
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

/// The IPv4 or IPv6 address in a socket address (`None` for any other family).
pub fn inet_address(a: &nix::sys::socket::SockaddrStorage) -> Option<std::net::SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(std::net::SocketAddr::from((v4.ip(), v4.port())));
    }
    let v6 = a.as_sockaddr_in6()?;
    Some(std::net::SocketAddr::from((v6.ip(), v6.port())))
}

/// The descriptors open in this process among `0..limit`, found with one `poll(2)` (a
/// closed number comes back `POLLNVAL`) instead of a failing system call per number: the
/// scans below run for every transfer. Falls back to every number if poll refuses (an
/// `RLIMIT_NOFILE` below `limit`), so a caller never misses a descriptor.
fn open_descriptors(limit: std::os::fd::RawFd) -> Vec<std::os::fd::RawFd> {
    use nix::libc;
    let mut fds: Vec<libc::pollfd> = (0..limit)
        .map(|fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        })
        .collect();
    // SAFETY: `fds` is a live, initialised array of exactly `fds.len()` pollfd entries that
    // poll may write `revents` into; a zero timeout never blocks, and poll neither keeps the
    // pointer nor touches the descriptors.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
    if ready < 0 {
        return (0..limit).collect();
    }
    fds.iter()
        .filter(|p| p.revents & libc::POLLNVAL == 0)
        .map(|p| p.fd)
        .collect()
}

/// A new descriptor for the one connected TCP socket among this process's descriptors
/// `0..limit` whose local address is `local` and whose peer's address is `peer_ip`; `None` if
/// none or more than one match. (libunftp hands the storage backend a download's data
/// connection only as an `AsyncWrite`; this is how it finds the socket to `sendfile` into.)
pub fn find_connected_socket(
    local: std::net::SocketAddr,
    peer_ip: std::net::IpAddr,
    limit: std::os::fd::RawFd,
) -> Option<std::os::fd::OwnedFd> {
    use nix::sys::socket::{SockaddrStorage, getpeername, getsockname};
    use std::os::fd::{BorrowedFd, RawFd};
    let matches = |raw: RawFd| {
        let here = getsockname::<SockaddrStorage>(raw)
            .ok()
            .and_then(|a| inet_address(&a));
        // The peer only of a socket on the right local address: one system call for the rest.
        here == Some(local)
            && getpeername::<SockaddrStorage>(raw)
                .ok()
                .and_then(|a| inet_address(&a))
                .is_some_and(|p| p.ip().to_canonical() == peer_ip.to_canonical())
    };
    let mut found = None;
    for raw in open_descriptors(limit) {
        if matches(raw) {
            if found.is_some() {
                return None;
            }
            found = Some(raw);
        }
    }
    let raw = found?;
    // SAFETY: borrowed only for the one fcntl below; if another thread closed `raw` since the
    // check, fcntl fails with EBADF (or duplicates whatever took the number, which the check on
    // the duplicate below rejects).
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    let duplicate = nix::fcntl::fcntl(borrowed, nix::fcntl::F_DUPFD_CLOEXEC(0)).ok()?;
    // SAFETY: F_DUPFD_CLOEXEC just made this descriptor for us; nothing else owns it.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(duplicate) };
    // The duplicate refers to one open socket for as long as it lives: check that one.
    matches(std::os::fd::AsRawFd::as_raw_fd(&owned)).then_some(owned)
}

/// Whether a data connection from `peer_ip` has reached the passive listener bound at `local`
/// among this process's descriptors `0..limit`: one accepted (a connected socket with that
/// local address and peer), or one waiting in that listener's queue (readable). A `false`
/// means the client has not connected yet (or its handshake is still under way).
pub fn data_connection_came(
    local: std::net::SocketAddr,
    peer_ip: std::net::IpAddr,
    limit: std::os::fd::RawFd,
) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::socket::{SockaddrStorage, getpeername, getsockname, getsockopt, sockopt};
    use std::os::fd::BorrowedFd;
    open_descriptors(limit).into_iter().any(|raw| {
        let here = getsockname::<SockaddrStorage>(raw)
            .ok()
            .and_then(|a| inet_address(&a));
        if here != Some(local) {
            return false;
        }
        if let Some(peer) = getpeername::<SockaddrStorage>(raw)
            .ok()
            .and_then(|a| inet_address(&a))
        {
            return peer.ip().to_canonical() == peer_ip.to_canonical();
        }
        // SAFETY: borrowed only for the getsockopt and the zero-timeout poll below; if another
        // thread closed `raw` since getsockname, both fail with EBADF (or ask about whatever
        // took the number: a wrong answer here only lengthens or shortens a hold).
        let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
        if !getsockopt(&borrowed, sockopt::AcceptConn).unwrap_or(false) {
            return false;
        }
        let mut fds = [PollFd::new(borrowed, PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
    })
}

/// Register an owned descriptor with the current tokio runtime's reactor.
pub fn async_fd(
    fd: std::os::fd::OwnedFd,
) -> io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    // SAFETY: an `OwnedFd` is open for as long as it lives and `as_raw_fd` always returns the same
    // number; the `AsyncFd` takes ownership, so nothing else can close or replace it meanwhile.
    unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(|e| io::Error::other(e.to_string()))
}

/// Mark every descriptor above 2 that this process inherited close-on-exec, so none reaches
/// the spawner and, through it, a session (a directory handle from outside a jail would be a
/// way out of it). Call first thing in the master, before any thread or descriptor of its own
/// exists; descriptors systemd passes are claimed afterwards ([`take_inherited_fd`]).
pub fn close_inherited_fds_on_exec() -> io::Result<()> {
    use nix::fcntl::{F_GETFD, F_SETFD, FdFlag, fcntl};
    use std::os::fd::{BorrowedFd, RawFd};
    let listed: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for raw in listed {
        // SAFETY: borrowed only for the two fcntl calls; the process is still single-threaded,
        // so nothing closes or reuses the number meanwhile. A number that was not open (the
        // directory handle read_dir used, already closed) fails F_GETFD with EBADF and is skipped.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        if let Ok(flags) = fcntl(fd, F_GETFD) {
            let flags = FdFlag::from_bits_truncate(flags) | FdFlag::FD_CLOEXEC;
            fcntl(fd, F_SETFD(flags))?;
        }
    }
    Ok(())
}

/// [`send_message`] on a non-blocking socket registered with tokio: waits until it is writable.
pub async fn send_message_async(
    socket: &tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
    bytes: &[u8],
    fd: Option<std::os::fd::BorrowedFd<'_>>,
) -> io::Result<()> {
    use std::os::fd::AsFd;
    loop {
        let mut ready = socket.writable().await?;
        if let Ok(result) = ready.try_io(|s| send_message(s.get_ref().as_fd(), bytes, fd)) {
            return result;
        }
    }
}

/// [`recv_message`] on a non-blocking socket registered with tokio: waits until it is readable.
pub async fn recv_message_async(
    socket: &tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
    buf: &mut [u8],
) -> io::Result<(usize, Option<std::os::fd::OwnedFd>)> {
    use std::os::fd::AsFd;
    loop {
        let mut ready = socket.readable().await?;
        if let Ok(result) = ready.try_io(|s| recv_message(s.get_ref().as_fd(), buf)) {
            return result;
        }
    }
}

/// The descriptor numbers open in this process, from `/proc/self/fd` (the listing's own
/// directory handle left out).
pub fn listed_open_fds() -> io::Result<Vec<std::os::fd::RawFd>> {
    use nix::fcntl::{F_GETFD, fcntl};
    let listed: Vec<std::os::fd::RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    Ok(listed
        .into_iter()
        // SAFETY: borrowed only to test that the number is open (the directory handle used for
        // the listing is closed by now and fails with EBADF).
        .filter(|fd| fcntl(unsafe { std::os::fd::BorrowedFd::borrow_raw(*fd) }, F_GETFD).is_ok())
        .collect())
}

/// Close every descriptor of this process except `keep` and 0–2. Call while single-threaded
/// and before any chroot (it lists `/proc/self/fd`).
pub fn close_all_fds_except(keep: &[std::os::fd::RawFd]) -> io::Result<()> {
    use std::os::fd::{FromRawFd, OwnedFd};
    for raw in listed_open_fds()?
        .into_iter()
        .filter(|fd| *fd > 2 && !keep.contains(fd))
    {
        // SAFETY: the process is single-threaded and `raw` is open and not one the caller
        // keeps: whoever held it is abandoned on purpose (the sandbox must hold nothing else),
        // and nothing uses the number again after this close.
        drop(unsafe { OwnedFd::from_raw_fd(raw) });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::open_descriptors;
    use std::os::fd::AsRawFd;

    #[test]
    fn open_descriptors_lists_the_open_numbers_and_not_the_closed_ones() {
        let open = std::fs::File::open("/").unwrap();
        let closed = std::fs::File::open("/").unwrap().as_raw_fd();
        let limit = 1 + open.as_raw_fd().max(closed);
        let listed = open_descriptors(limit);
        assert!(listed.contains(&open.as_raw_fd()), "{listed:?}");
        assert!(listed.contains(&0) || listed.contains(&1) || listed.contains(&2));
        // `closed` was closed when its File dropped (unless a parallel test took the number).
        if std::fs::read_link(format!("/proc/self/fd/{closed}")).is_err() {
            assert!(!listed.contains(&closed), "{listed:?}");
        }
        assert!(listed.iter().all(|fd| *fd < limit));
    }
}
