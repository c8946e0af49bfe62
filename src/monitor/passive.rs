//! Passive-mode data sockets: a port from `pasv_min_port..=pasv_max_port`, bound in the host's
//! network by the monitor and handed to the worker.
//!
//! The worker lives in a private network namespace (see `netns`), so it cannot make a socket
//! that clients can reach; it asks the monitor, which binds on the control connection's own
//! local address only. Many sessions share one range, so a busy port is normal: the scan
//! covers the whole range from a per-session starting point and takes the first free port.
//! `0/0` means any port the kernel picks; `pasv_enable = false` refuses every passive socket.
//! Nothing here binds outside the configured range or on another address.
//!
//! SECURITY: a session has at most one passive listener at a time, whatever its worker asks:
//! a new one shuts the previous one down (for the worker's copy too), and one nobody used is
//! shut down after `accept_timeout`. Each listener shares its port with a *trap* listener
//! (`SO_REUSEPORT`, with a BPF program that sends connections from the client's address to
//! the real listener and every other one to the trap: `crate::monitor::steering`), so a
//! connection from another address never reaches libunftp — which would drop the real
//! transfer with it — and the monitor accepts it, logs it and closes it. Besides its listener a session holds at most one
//! *spare*, made the same way (listening, with its trap) and handed to the worker ahead, so
//! that its next PASV/EPSV needs no round trip to the monitor (`worker::binder`); when the
//! worker takes it, it becomes the session's listener and the next spare is made. A spare is
//! shut down too when nobody took it for `accept_timeout`, and when the worker goes. All
//! these sockets are owned by a per-session file-system uid, so no other session's listener
//! can ever join the group.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::ops::RangeInclusive;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::sys::socket::{
    AddressFamily, Backlog, Shutdown, SockFlag, SockType, SockaddrStorage, bind, listen,
    setsockopt, shutdown, socket, sockopt,
};

use super::steering::{self, Steering};
use crate::config::Config;

/// The monitor's side: the range and where the next scan starts.
#[derive(Debug)]
pub struct PassivePorts {
    enabled: bool,
    /// `None` = any port.
    range: Option<RangeInclusive<u16>>,
    cursor: u32,
    /// The session's steering program, loaded at its first port.
    steering: Steering,
}

impl PassivePorts {
    pub fn from_config(config: &Config) -> Self {
        let range = match (config.pasv_min_port, config.pasv_max_port) {
            (0, 0) => None,
            (min, 0) => Some(min..=u16::MAX),
            (min, max) => Some(min.max(1)..=max),
        };
        // Spread concurrent sessions over the range so they rarely collide on the first try.
        let seed = super::host_pid().wrapping_mul(2_654_435_761)
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
        PassivePorts {
            enabled: config.pasv_enable,
            range,
            cursor: seed,
            steering: Steering::default(),
        }
    }

    /// The ports to try, in order, for one bind.
    fn candidates(&mut self) -> impl Iterator<Item = u16> + use<> {
        // Lazily: a PASV usually takes the first candidate, and a range has thousands.
        let (start, len, first) = match &self.range {
            None => (0, 1, 0),
            Some(r) => {
                let (start, end) = (u32::from(*r.start()), u32::from(*r.end()));
                let len = end - start + 1;
                let first = self.cursor % len;
                self.cursor = self.cursor.wrapping_add(1);
                (start, len, first)
            }
        };
        (0..len).map(move |i| (start + (first + i) % len) as u16)
    }

    /// A listener on `ip` with the first free port of the range, and its trap for connections
    /// from anywhere but `client`.
    #[cfg(test)]
    pub fn bind(&mut self, ip: IpAddr, client: IpAddr) -> io::Result<Passive> {
        self.reserve(ip, client, None)?.listen()
    }

    /// The first free port of the range on `ip`, bound for `client` but not listening yet:
    /// the monitor keeps one of these ready so that a PASV costs only the `listen()` calls.
    /// `avoid`: this session's own port in use — its sockets share the session's owner uid, so
    /// `SO_REUSEPORT` would let a second set bind there (and join its steering group).
    pub fn reserve(
        &mut self,
        ip: IpAddr,
        client: IpAddr,
        avoid: Option<u16>,
    ) -> io::Result<Reserved> {
        if !self.enabled {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "passive mode is disabled",
            ));
        }
        let client = crate::jail::netns::unmapped(client);
        let program = self.steering.program_for(client);
        let mut last_error =
            io::Error::new(io::ErrorKind::AddrInUse, "no free passive port in range");
        for port in self.candidates() {
            // SECURITY: never a second listener set on the session's own port.
            if port != 0 && Some(port) == avoid {
                continue;
            }
            match Reserved::bind(SocketAddr::new(ip, port), client, program.clone()) {
                Ok(p) => return Ok(p),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }
}

/// A port of the range, bound (with its trap) but not listening: no connection can reach it,
/// so it carries nothing until [`Reserved::listen`]; it only keeps the port for this session.
#[derive(Debug)]
pub struct Reserved {
    real: OwnedFd,
    trap: OwnedFd,
    /// Where it is bound (the port the kernel chose when the range is "any").
    address: SocketAddr,
    /// The client it steers connections for.
    client: IpAddr,
    /// The session's loaded steering program (`None`: classic BPF per port).
    program: Option<Rc<OwnedFd>>,
}

impl Reserved {
    fn bind(
        address: SocketAddr,
        client: IpAddr,
        program: Option<Rc<OwnedFd>>,
    ) -> io::Result<Reserved> {
        // The sockets' owner is the file-system uid they are created under (one thread).
        let previous = nix::unistd::setfsuid(socket_owner());
        let made = (
            reusable_socket(address, SockFlag::empty()),
            // The trap is only ever accepted from without waiting.
            reusable_socket(address, SockFlag::SOCK_NONBLOCK),
        );
        nix::unistd::setfsuid(previous);
        let (real, trap) = (made.0?, made.1?);
        bind(real.as_raw_fd(), &SockaddrStorage::from(address))?;
        let real = OwnedFd::from(TcpListener::from(real));
        // Port 0 ("any"): the trap must join the port the kernel chose.
        let address = if address.port() != 0 {
            address
        } else {
            nix::sys::socket::getsockname::<SockaddrStorage>(real.as_raw_fd())
                .ok()
                .and_then(|a| crate::sys::inet_address(&a))
                .ok_or_else(|| io::Error::other("bound passive socket without an address"))?
        };
        bind(trap.as_raw_fd(), &SockaddrStorage::from(address))?;
        Ok(Reserved {
            real,
            trap,
            address,
            client,
            program,
        })
    }

    /// Start listening: the real listener first (index 0 of the `SO_REUSEPORT` group), then
    /// the trap (index 1), then the program that steers between them.
    pub fn listen(self) -> io::Result<Passive> {
        let Reserved {
            real,
            trap,
            address,
            client,
            program,
        } = self;
        listen(&real, Backlog::new(64).unwrap_or(Backlog::MAXCONN))?;
        let listener = TcpListener::from(real);
        let steered = listen(&trap, Backlog::new(8).unwrap_or(Backlog::MAXCONN))
            .map_err(io::Error::from)
            .and_then(|()| steering::attach(listener.as_fd(), program.as_deref(), client));
        let trap = match steered {
            Ok(()) => Some(TcpListener::from(trap)),
            Err(e) => {
                // Without it libunftp drops a wrong-address connection (and the transfer).
                tracing::warn!(error = %e, port = address.port(), "no trap for wrong-address data connections");
                None
            }
        };
        Ok(Passive {
            listener,
            trap,
            port: address.port(),
            opened: Instant::now(),
        })
    }
}

/// One passive port: the listener the worker accepts on, and the monitor's trap beside it.
#[derive(Debug)]
pub struct Passive {
    listener: TcpListener,
    trap: Option<TcpListener>,
    port: u16,
    opened: Instant,
}

/// The uid that owns this session's passive sockets (see the module header): unique among
/// live sessions, and no account's.
fn socket_owner() -> nix::unistd::Uid {
    // SECURITY: unique per live session — the host pid, not getpid() (1 in every session's
    // PID namespace, which would let every session join every other's port group).
    nix::unistd::Uid::from_raw(3_000_000_000u32.wrapping_add(super::host_pid()))
}

fn reusable_socket(address: SocketAddr, flags: SockFlag) -> io::Result<OwnedFd> {
    let family = if address.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | flags,
        None,
    )?;
    setsockopt(&fd, sockopt::ReusePort, &true)?;
    Ok(fd)
}

impl Passive {
    /// The listener to pass to the worker.
    pub fn listener(&self) -> std::os::fd::BorrowedFd<'_> {
        self.listener.as_fd()
    }

    pub fn trap(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.trap.as_ref().map(|t| t.as_fd())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A spare put in use: its `accept_timeout` starts again (the client is told its port now).
    pub fn renewed(mut self) -> Passive {
        self.opened = Instant::now();
        self
    }

    /// When an unused listener is shut down.
    pub fn expires(&self, accept_timeout: Duration) -> Instant {
        self.opened + accept_timeout + Duration::from_secs(1)
    }

    /// Accept what reached the trap, log it and close it.
    pub fn refuse_intruders(&self) {
        let Some(trap) = &self.trap else { return };
        for _ in 0..16 {
            match trap.accept() {
                Ok((stream, from)) => {
                    tracing::warn!(from = %from, port = self.port(),
                        "data connection from another address than the client's refused");
                    drop(stream);
                }
                Err(_) => break,
            }
        }
    }
}

impl Drop for Passive {
    /// SECURITY: stop listening for the worker's copy too (shutting a listening socket down
    /// disconnects it; the port is free once both copies are closed).
    fn drop(&mut self) {
        let _ = shutdown(
            std::os::fd::AsRawFd::as_raw_fd(&self.listener),
            Shutdown::Read,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(min: u16, max: u16) -> PassivePorts {
        let config = Config {
            pasv_min_port: min,
            pasv_max_port: max,
            ..Config::default()
        };
        PassivePorts::from_config(&config)
    }

    #[test]
    fn candidates_cover_the_whole_range_once() {
        let mut p = ports(40000, 40009);
        let mut c: Vec<u16> = p.candidates().collect();
        c.sort();
        assert_eq!(c, (40000..=40009).collect::<Vec<_>>());
        assert_eq!(ports(0, 0).candidates().collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn a_busy_port_is_skipped_not_an_error() {
        let holder = TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = holder.local_addr().unwrap().port();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let mut only_busy = PassivePorts {
            enabled: true,
            range: Some(busy..=busy),
            cursor: 0,
            steering: Steering::default(),
        };
        assert!(only_busy.bind(local, local).is_err());
        // A range of the busy port and its neighbour: the scan must get past the busy one
        // (unless the neighbour is taken too, which would make the check meaningless).
        let next = busy.checked_add(1).unwrap_or(busy - 1);
        if TcpListener::bind(("127.0.0.1", next)).is_err() {
            eprintln!("neighbour port {next} busy; checking the single-port refusal only");
            return;
        }
        let (lo, hi) = (busy.min(next), busy.max(next));
        for cursor in 0..2 {
            let mut p = PassivePorts {
                enabled: true,
                range: Some(lo..=hi),
                cursor,
                steering: Steering::default(),
            };
            assert_eq!(p.bind(local, local).unwrap().port(), next);
        }
    }

    #[test]
    fn disabled_passive_mode_binds_nothing() {
        let config = Config {
            pasv_enable: false,
            ..Config::default()
        };
        assert!(
            PassivePorts::from_config(&config)
                .bind("127.0.0.1".parse().unwrap(), "127.0.0.1".parse().unwrap())
                .is_err()
        );
    }

    #[test]
    fn connections_from_another_address_go_to_the_trap() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let passive = ports(0, 0).bind(local, local).unwrap();
        assert!(passive.trap().is_some(), "the trap must be there");
        assert_steered(&passive, "127.0.0.2");
    }

    /// A connection from `intruder` reaches the trap, one from 127.0.0.1 the listener.
    fn assert_steered(passive: &Passive, intruder: &str) {
        use std::net::TcpStream;
        let port = passive.port();
        let _intruder = socket_from(intruder, port).expect("connect from the intruder address");
        let trap = passive.trap.as_ref().expect("the trap");
        trap.set_nonblocking(false).unwrap();
        let (_, from) = trap.accept().unwrap();
        assert_eq!(from.ip(), intruder.parse::<IpAddr>().unwrap());
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let _client = TcpStream::connect((local, port)).unwrap();
        let (_, from) = passive.listener.accept().unwrap();
        assert_eq!(from.ip(), local);
    }

    #[test]
    fn the_loaded_ebpf_program_steers_like_the_classic_one() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: loading eBPF needs root (CAP_BPF or CAP_SYS_ADMIN)");
            return;
        }
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let mut ports = ports(0, 0);
        assert!(
            ports.steering.program_for(local).is_some(),
            "root must be able to load the steering program"
        );
        // Two ports in a row share the one loaded program.
        for _ in 0..2 {
            let reserved = ports.reserve(local, local, None).unwrap();
            let program = reserved.program.clone().expect("the loaded program");
            assert!(Rc::strong_count(&program) >= 3, "shared, not loaded again");
            drop(program);
            assert_steered(&reserved.listen().unwrap(), "127.0.0.3");
        }
    }

    #[test]
    fn a_reserved_port_accepts_nothing_until_it_listens() {
        use std::net::TcpStream;
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let reserved = ports(0, 0).reserve(local, local, None).unwrap();
        let port = reserved.address.port();
        assert_ne!(port, 0);
        assert!(
            TcpStream::connect((local, port)).is_err(),
            "reserved, not listening"
        );
        let passive = reserved.listen().unwrap();
        assert_eq!(passive.port(), port);
        let _client = TcpStream::connect((local, port)).unwrap();
        let (_, from) = passive.listener.accept().unwrap();
        assert_eq!(from.ip(), local);
    }

    #[test]
    fn the_next_reservation_never_shares_the_sessions_own_port() {
        // Same owner uid (one session): SO_REUSEPORT would allow a second set on the port.
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let first = ports(0, 0).bind(local, local).unwrap();
        let port = first.port();
        for cursor in 0..4 {
            let mut p = PassivePorts {
                enabled: true,
                range: Some(port..=port),
                cursor,
                steering: Steering::default(),
            };
            assert!(
                p.reserve(local, local, Some(port)).is_err(),
                "reserved the session's own port {port}"
            );
        }
    }

    fn socket_from(ip: &str, port: u16) -> Option<std::net::TcpStream> {
        use std::os::fd::AsRawFd;
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .ok()?;
        let from: SocketAddr = format!("{ip}:0").parse().unwrap();
        bind(fd.as_raw_fd(), &SockaddrStorage::from(from)).ok()?;
        let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        nix::sys::socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(to)).ok()?;
        Some(std::net::TcpStream::from(fd))
    }
}
