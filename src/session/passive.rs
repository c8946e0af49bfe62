//! Passive-mode data sockets: a port from `pasv_min_port..=pasv_max_port`, bound in the host's
//! network by the monitor and handed to the worker.
//!
//! The worker lives in a private network namespace (see `netns`), so it cannot make a socket
//! that clients can reach; it asks the monitor, which binds on the control connection's own
//! local address only. Many sessions share one range, so a busy port is normal: the scan
//! covers the whole range from a per-session starting point and takes the first free port.
//! `0/0` means any port the kernel picks; `pasv_enable = false` refuses every passive socket.
//! Nothing here binds outside the configured range or on another address.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::ops::RangeInclusive;
use std::sync::Arc;

use async_trait::async_trait;
use libunftp::options::Binder;
use tokio::net::TcpSocket;

use crate::config::Config;
use crate::session::protocol::{Reply, Request};
use crate::session::worker::SessionShared;

/// The monitor's side: the range and where the next scan starts.
#[derive(Debug)]
pub struct PassivePorts {
    enabled: bool,
    /// `None` = any port.
    range: Option<RangeInclusive<u16>>,
    cursor: u32,
}

impl PassivePorts {
    pub fn from_config(config: &Config) -> Self {
        let range = match (config.pasv_min_port, config.pasv_max_port) {
            (0, 0) => None,
            (min, 0) => Some(min..=u16::MAX),
            (min, max) => Some(min.max(1)..=max),
        };
        // Spread concurrent sessions over the range so they rarely collide on the first try.
        let seed = std::process::id().wrapping_mul(2_654_435_761)
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
        PassivePorts {
            enabled: config.pasv_enable,
            range,
            cursor: seed,
        }
    }

    /// The ports to try, in order, for one bind.
    fn candidates(&mut self) -> Vec<u16> {
        match &self.range {
            None => vec![0],
            Some(r) => {
                let (start, end) = (u32::from(*r.start()), u32::from(*r.end()));
                let len = end - start + 1;
                let first = self.cursor % len;
                self.cursor = self.cursor.wrapping_add(1);
                (0..len)
                    .map(|i| (start + (first + i) % len) as u16)
                    .collect()
            }
        }
    }

    /// A listening socket on `ip` with the first free port of the range.
    pub fn bind(&mut self, ip: IpAddr) -> io::Result<TcpListener> {
        if !self.enabled {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "passive mode is disabled",
            ));
        }
        let mut last_error =
            io::Error::new(io::ErrorKind::AddrInUse, "no free passive port in range");
        for port in self.candidates() {
            match TcpListener::bind(SocketAddr::new(ip, port)) {
                Ok(listener) => return Ok(listener),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }
}

/// The worker's side: libunftp's `Binder`, answered by the monitor.
#[derive(Debug)]
pub struct MonitorBinder {
    shared: Arc<SessionShared>,
}

impl MonitorBinder {
    pub fn new(shared: Arc<SessionShared>) -> Self {
        MonitorBinder { shared }
    }
}

#[async_trait]
impl Binder for MonitorBinder {
    async fn bind(
        &mut self,
        _in_namespace: IpAddr,
        _ignored: RangeInclusive<u16>,
    ) -> io::Result<TcpSocket> {
        if let Some(tls) = &self.shared.tls {
            tls.new_data_connection();
        }
        let answer = self.shared.ask_monitor(&Request::BindPassive).await?;
        match answer {
            (Reply::Bound, Some(fd)) => {
                let stream = std::net::TcpStream::from(fd);
                stream.set_nonblocking(true)?;
                Ok(TcpSocket::from_std_stream(stream))
            }
            (Reply::NotBound, None) => {
                tracing::warn!("no passive port available");
                Err(io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    "no passive socket",
                ))
            }
            _ => {
                tracing::error!("monitor answered a passive socket request out of protocol");
                std::process::exit(crate::session::ExitReason::Error as i32);
            }
        }
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
        let mut c = p.candidates();
        c.sort();
        assert_eq!(c, (40000..=40009).collect::<Vec<_>>());
        assert_eq!(ports(0, 0).candidates(), vec![0]);
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
        };
        assert!(only_busy.bind(local).is_err());
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
            };
            assert_eq!(p.bind(local).unwrap().local_addr().unwrap().port(), next);
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
                .bind("127.0.0.1".parse().unwrap())
                .is_err()
        );
    }
}
