//! Binding the control sockets: IPv4 and IPv6 at once from one process when both are on.
//!
//! The IPv6 socket is `IPV6_V6ONLY` when an IPv4 socket is also bound, so the two never fight
//! over the same port. Binding happens before anything is announced as ready; a failure names
//! the address.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::{TcpListener, TcpSocket};

use crate::config::Config;

/// The control addresses the config asks for.
pub fn control_addresses(config: &Config) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    if config.listen {
        out.push(SocketAddr::from((
            config.listen_address.unwrap_or(Ipv4Addr::UNSPECIFIED),
            config.listen_port,
        )));
    }
    if config.listen_ipv6 {
        out.push(SocketAddr::from((
            config.listen_address6.unwrap_or(Ipv6Addr::UNSPECIFIED),
            config.listen_port,
        )));
    }
    out
}

fn bind_one(addr: SocketAddr, v6_only: bool) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => {
            let s = TcpSocket::new_v6()?;
            nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv6V6Only, &v6_only)?;
            s
        }
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Bind every control socket or fail naming the address that could not be bound.
pub fn bind_all(config: &Config) -> Result<Vec<TcpListener>, String> {
    let addresses = control_addresses(config);
    let both = addresses.len() > 1;
    let mut listeners = Vec::new();
    for addr in addresses {
        // With a port of 0 (tests), the IPv6 socket takes the port the IPv4 one got.
        let addr = match (addr.port(), listeners.first()) {
            (0, Some(first)) => {
                let first: &TcpListener = first;
                let port = first.local_addr().map_err(|e| e.to_string())?.port();
                SocketAddr::new(addr.ip(), port)
            }
            _ => addr,
        };
        let listener = bind_one(addr, both).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        listeners.push(listener);
    }
    Ok(listeners)
}
