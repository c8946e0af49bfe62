//! Stand-in sockets, the monitor's side: TCP sockets made inside the worker's own network
//! namespace (which holds nothing but loopback with the client's address), for the stand-in
//! connections libunftp is handed (active mode, and protected passive connections: the worker
//! ends the data TLS itself). The worker's seccomp filter forbids it `socket`, `bind` and
//! `connect`: it gets each socket from here, a listener already listening and a connection to
//! it already made from the client's address, and only listens and accepts on them.
//!
//! The monitor made the namespace itself before it forked the worker and keeps its handle, so
//! a socket asked for here can only ever live there, never in the host's network.
//!
//! What it must never do: make a socket in the host's network for the worker, bind one to
//! another address than the namespace's loopback (listeners) or the client's (connectors), or
//! connect one anywhere but to the stand-in listener it made last.

use std::cell::Cell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, listen, setsockopt, socket,
    sockopt,
};

use crate::jail::netns;
use crate::protocol::monitor::StandInSocket;

/// Connections a stand-in listener queues (libunftp takes one; its own `listen` raises it).
const BACKLOG: i32 = 8;
/// Longest wait for a connection to a stand-in listener (on loopback it is made at once; only a
/// full queue, which a compromised worker could cause, makes it wait).
const CONNECT_WAIT: Duration = Duration::from_secs(2);

/// One session's worker network: its namespace and the monitor's own, to return to.
pub struct WorkerNetwork {
    own: OwnedFd,
    worker: OwnedFd,
    /// The client's address (unmapped), which the namespace's loopback carries.
    client: IpAddr,
    /// The port of the stand-in listener made last: the one a connector may connect to.
    last_listener: Cell<Option<u16>>,
}

impl WorkerNetwork {
    /// Make the worker's namespace (before its fork; the monitor has one thread).
    pub fn make(client: IpAddr) -> io::Result<WorkerNetwork> {
        let client = netns::unmapped(client);
        let own = OwnedFd::from(std::fs::File::open("/proc/self/ns/net")?);
        let worker = netns::session_namespace(client).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot isolate the session's network: {e}"),
            )
        })?;
        Ok(WorkerNetwork {
            own,
            worker,
            client,
            last_listener: Cell::new(None),
        })
    }

    /// The namespace, for the worker to enter.
    pub fn namespace(&self) -> &OwnedFd {
        &self.worker
    }

    /// A stand-in socket of `kind`, made inside the worker's namespace.
    pub fn socket(&self, kind: StandInSocket) -> io::Result<OwnedFd> {
        let (family, loopback) = match self.client {
            IpAddr::V4(_) => (AddressFamily::Inet, IpAddr::V4(Ipv4Addr::LOCALHOST)),
            IpAddr::V6(_) => (AddressFamily::Inet6, IpAddr::V6(Ipv6Addr::LOCALHOST)),
        };
        if let StandInSocket::Connector { to } = kind
            && self.last_listener.get() != Some(to)
        {
            return Err(io::Error::other(format!(
                "no stand-in listener on port {to} to connect to"
            )));
        }
        let client = self.client;
        let made = netns::socket_in(&self.own, &self.worker, || match kind {
            StandInSocket::Listener { port } => {
                let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
                // A stand-in of an earlier transfer on this port may linger in TIME_WAIT.
                setsockopt(&fd, sockopt::ReuseAddr, &true)?;
                bind(
                    fd.as_raw_fd(),
                    &SockaddrStorage::from(SocketAddr::new(loopback, port)),
                )?;
                // Listening before the worker has it: the connector's connection waits in the
                // queue for libunftp's accept.
                listen(&fd, Backlog::new(BACKLOG)?)?;
                Ok(fd)
            }
            StandInSocket::Connector { to } => {
                let fd = socket(
                    family,
                    SockType::Stream,
                    SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                    None,
                )?;
                bind(
                    fd.as_raw_fd(),
                    &SockaddrStorage::from(SocketAddr::new(client, 0)),
                )?;
                super::active::connect_within(
                    &fd,
                    SocketAddr::new(loopback, to),
                    CONNECT_WAIT,
                    "the stand-in listener's queue is full",
                )?;
                Ok(fd)
            }
        })?;
        if let StandInSocket::Listener { .. } = kind {
            let bound: SockaddrStorage = nix::sys::socket::getsockname(made.as_raw_fd())?;
            let port = bound
                .as_sockaddr_in()
                .map(|a| a.port())
                .or_else(|| bound.as_sockaddr_in6().map(|a| a.port()));
            self.last_listener.set(port);
        }
        Ok(made)
    }
}
