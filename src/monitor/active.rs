//! Active mode, the monitor's side: the data connection to the address a PORT/EPRT named,
//! made in the host's network from the control connection's own address (and from
//! `ftp_data_port` with `connect_from_port_20`), then passed to the worker.
//!
//! It never connects before the address has passed vsftpd's rule again here
//! (`crate::control::port::allowed`): the worker that asked may be compromised.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use crate::jail::netns::unmapped;

/// The monitor's side: connect to `target` from `local` (port `from_port`, or any), waiting at
/// most `timeout`. Blocking; the monitor has nothing else to do meanwhile.
pub fn connect(
    target: SocketAddr,
    local: IpAddr,
    from_port: Option<u16>,
    timeout: Duration,
) -> io::Result<OwnedFd> {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrStorage, bind, setsockopt, socket, sockopt,
    };
    let target = SocketAddr::new(unmapped(target.ip()), target.port());
    let local = unmapped(local);
    // Only a promiscuous PORT can name the other family; then any local address of it will do.
    let local = match (local, target) {
        (IpAddr::V4(_), SocketAddr::V4(_)) | (IpAddr::V6(_), SocketAddr::V6(_)) => local,
        (_, SocketAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (_, SocketAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let family = match target {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    if from_port.is_some() {
        // Many sessions make their data connections from the same port 20.
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    bind(
        fd.as_raw_fd(),
        &SockaddrStorage::from(SocketAddr::new(local, from_port.unwrap_or(0))),
    )?;
    connect_within(&fd, target, timeout, "active connection timed out")?;
    Ok(fd)
}

/// Connect the non-blocking `fd` to `to`, waiting at most `timeout` (`timed_out` is the error's
/// text when it runs out). Used for active data connections and for the stand-ins.
pub(super) fn connect_within(
    fd: &OwnedFd,
    to: SocketAddr,
    timeout: Duration,
    timed_out: &'static str,
) -> io::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::socket::{SockaddrStorage, getsockopt, sockopt};
    match nix::sys::socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(to)) {
        Ok(()) => return Ok(()),
        Err(nix::errno::Errno::EINPROGRESS) => {}
        Err(e) => return Err(e.into()),
    }
    let millis = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
    loop {
        match poll(
            &mut fds,
            PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::TimedOut, timed_out)),
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    match getsockopt(fd, sockopt::SocketError)? {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}
