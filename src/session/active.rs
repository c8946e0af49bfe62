//! Active mode (PORT / EPRT): the client names an address and rftpd connects to it.
//!
//! The worker cannot reach the network (it lives in a private namespace), so the monitor makes
//! the connection in the host's network, from the control connection's own address (and from
//! `ftp_data_port` with `connect_from_port_20`), and passes it in. libunftp, which knows only
//! PORT and connects wherever it is told without checking, is told an address inside the
//! worker's namespace instead: a one-shot listener whose one connection is spliced to the real
//! one (TLS, when on, runs end to end through the splice).
//!
//! It must never connect before the address has passed vsftpd's rule: with
//! `port_promiscuous = false`, only the client's own address and a port of 1024 or above. The
//! relay checks it before asking; the monitor, which trusts nothing from the worker, checks it
//! again before connecting.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use crate::session::netns::unmapped;
use crate::session::protocol::{Reply, Request};
use crate::session::worker::SessionShared;

/// The argument of `PORT h1,h2,h3,h4,p1,p2`.
pub fn parse_port(arg: &str) -> Option<SocketAddr> {
    let numbers: Vec<u8> = arg
        .trim()
        .split(',')
        .map(|n| n.trim().parse::<u8>())
        .collect::<Result<_, _>>()
        .ok()?;
    let [a, b, c, d, hi, lo] = numbers.as_slice() else {
        return None;
    };
    let port = u16::from(*hi) << 8 | u16::from(*lo);
    Some(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(*a, *b, *c, *d),
        port,
    )))
}

/// The argument of `EPRT |1|ipv4|port|` or `EPRT |2|ipv6|port|` (RFC 2428; any delimiter).
pub fn parse_eprt(arg: &str) -> Option<SocketAddr> {
    let arg = arg.trim();
    let delimiter = arg.chars().next()?;
    let fields: Vec<&str> = arg.split(delimiter).collect();
    let ["", family, address, port, ""] = fields.as_slice() else {
        return None;
    };
    let port: u16 = port.parse().ok()?;
    let ip: IpAddr = match *family {
        "1" => IpAddr::V4(address.parse::<Ipv4Addr>().ok()?),
        "2" => IpAddr::V6(address.parse::<Ipv6Addr>().ok()?),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// vsftpd's rule for a PORT/EPRT address: anything but port 0 with `port_promiscuous`, else
/// only the client's own address and a port of 1024 or above.
pub fn allowed(target: SocketAddr, client: IpAddr, promiscuous: bool) -> bool {
    if target.port() == 0 {
        return false;
    }
    promiscuous || (unmapped(target.ip()) == unmapped(client) && target.port() >= 1024)
}

/// The monitor's side: connect to `target` from `local` (port `from_port`, or any), waiting at
/// most `timeout`. Blocking; the monitor has nothing else to do meanwhile.
pub fn connect(
    target: SocketAddr,
    local: IpAddr,
    from_port: Option<u16>,
    timeout: Duration,
) -> io::Result<OwnedFd> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrStorage, bind, getsockopt, setsockopt, socket,
        sockopt,
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
    match nix::sys::socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(target)) {
        Ok(()) => return Ok(fd),
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
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "active connection timed out",
                ));
            }
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    match getsockopt(&fd, sockopt::SocketError)? {
        0 => Ok(fd),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// The worker's side, for one PORT/EPRT the relay has checked: get the connection from the
/// monitor, open a one-shot listener inside the namespace and splice its one connection to the
/// real one. Returns the PORT line to give libunftp, or `None` if no connection could be made
/// (the failure is logged).
///
/// The stand-in listens on the client's own address (which the namespace has): libunftp drops
/// a data connection whose peer is not the control connection's. libunftp's PORT is IPv4 only,
/// so a client connected over IPv6 cannot be served this way (the relay says so first).
pub async fn prepare(
    shared: &Arc<SessionShared>,
    target: SocketAddr,
    wait: Duration,
) -> Option<String> {
    let IpAddr::V4(stand_in) = unmapped(shared.client_ip) else {
        return None;
    };
    if let Some(tls) = &shared.tls {
        tls.new_data_connection();
    }
    let answer = shared.ask_monitor(&Request::ConnectActive(target)).await;
    let real = match answer {
        Ok((Reply::Connected, Some(fd))) => std::net::TcpStream::from(fd),
        Ok((Reply::NotConnected, None)) => {
            tracing::info!(address = %target, "active data connection failed");
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e, "monitor unreachable for an active connection");
            return None;
        }
        _ => {
            tracing::error!("monitor answered an active connection request out of protocol");
            std::process::exit(crate::session::ExitReason::Error as i32);
        }
    };
    let spliced = async {
        real.set_nonblocking(true)?;
        let mut real = tokio::net::TcpStream::from_std(real)?;
        let _ = real.set_nodelay(true);
        let listener = tokio::net::TcpListener::bind((stand_in, 0)).await?;
        let inner = listener.local_addr()?;
        tokio::spawn(async move {
            let Ok(Ok((mut engine, _))) = tokio::time::timeout(wait, listener.accept()).await
            else {
                return;
            };
            drop(listener);
            let _ = tokio::io::copy_bidirectional_with_sizes(
                &mut engine,
                &mut real,
                SPLICE_BUFFER,
                SPLICE_BUFFER,
            )
            .await;
        });
        io::Result::Ok(inner)
    };
    match spliced.await {
        Ok(inner) => {
            let [a, b, c, d] = stand_in.octets();
            Some(format!(
                "PORT {a},{b},{c},{d},{},{}",
                inner.port() >> 8,
                inner.port() & 0xff
            ))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot splice an active connection");
            None
        }
    }
}

/// Buffer per direction of the splice.
const SPLICE_BUFFER: usize = 256 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_and_eprt_arguments_parse() {
        assert_eq!(
            parse_port("127,0,0,1,4,1"),
            Some("127.0.0.1:1025".parse().unwrap())
        );
        assert_eq!(
            parse_port(" 10, 1, 2, 3, 0, 21 "),
            Some("10.1.2.3:21".parse().unwrap())
        );
        for bad in [
            "",
            "1,2,3,4,5",
            "1,2,3,4,5,6,7",
            "256,0,0,1,4,1",
            "a,b,c,d,e,f",
        ] {
            assert_eq!(parse_port(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_eprt("|1|127.0.0.1|2121|"),
            Some("127.0.0.1:2121".parse().unwrap())
        );
        assert_eq!(
            parse_eprt("!2!::1!65535!"),
            Some("[::1]:65535".parse().unwrap())
        );
        for bad in [
            "",
            "|1|::1|21|",
            "|2|127.0.0.1|21|",
            "|3|x|1|",
            "|1|127.0.0.1|70000|",
            "|1|127.0.0.1|21",
        ] {
            assert_eq!(parse_eprt(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_the_clients_own_address_and_unprivileged_ports_unless_promiscuous() {
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let ok: SocketAddr = "192.0.2.1:1024".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:40000".parse().unwrap();
        let other: SocketAddr = "192.0.2.2:40000".parse().unwrap();
        let low: SocketAddr = "192.0.2.1:1023".parse().unwrap();
        let zero: SocketAddr = "192.0.2.1:0".parse().unwrap();
        assert!(allowed(ok, client, false));
        assert!(allowed(mapped, client, false));
        assert!(!allowed(other, client, false));
        assert!(!allowed(low, client, false));
        assert!(allowed(other, client, true));
        assert!(allowed(low, client, true));
        assert!(!allowed(zero, client, true));
    }
}
