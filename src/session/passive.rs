//! Passive-mode listening sockets: a port from `pasv_min_port..=pasv_max_port`.
//!
//! Many worker processes share one range, so a busy port is normal: the binder scans the
//! whole range from a per-call starting point and takes the first free port, instead of
//! libunftp's few random tries. `0/0` means any port the kernel picks. `pasv_enable = false`
//! refuses every passive socket. It never binds outside the configured range.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use async_trait::async_trait;
use libunftp::options::Binder;
use std::sync::Arc;
use tokio::net::TcpSocket;

use crate::config::Config;
use crate::session::tls::HandshakeLog;

#[derive(Debug)]
pub struct RangeBinder {
    enabled: bool,
    /// Told about every new data connection, so TLS checks apply to the right one.
    tls: Option<Arc<HandshakeLog>>,
    /// `None` = any port.
    range: Option<RangeInclusive<u16>>,
    /// Where the next scan starts, advanced on every bind.
    cursor: u32,
}

impl RangeBinder {
    pub fn from_config(config: &Config, tls: Option<Arc<HandshakeLog>>) -> Self {
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
        RangeBinder {
            enabled: config.pasv_enable,
            tls,
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
}

#[async_trait]
impl Binder for RangeBinder {
    async fn bind(
        &mut self,
        local_addr: IpAddr,
        _ignored: RangeInclusive<u16>,
    ) -> io::Result<TcpSocket> {
        if !self.enabled {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "passive mode is disabled",
            ));
        }
        if let Some(tls) = &self.tls {
            tls.new_data_connection();
        }
        let mut last_error =
            io::Error::new(io::ErrorKind::AddrInUse, "no free passive port in range");
        for port in self.candidates() {
            let socket = match local_addr {
                IpAddr::V4(_) => TcpSocket::new_v4()?,
                IpAddr::V6(_) => TcpSocket::new_v6()?,
            };
            socket.set_reuseaddr(true)?;
            match socket.bind(SocketAddr::new(local_addr, port)) {
                Ok(()) => return Ok(socket),
                Err(e) => last_error = e,
            }
        }
        tracing::warn!(error = %last_error, "no passive port available");
        Err(last_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binder(min: u16, max: u16) -> RangeBinder {
        let config = Config {
            pasv_min_port: min,
            pasv_max_port: max,
            ..Config::default()
        };
        RangeBinder::from_config(&config, None)
    }

    #[test]
    fn candidates_cover_the_whole_range_once() {
        let mut b = binder(40000, 40009);
        let mut c = b.candidates();
        c.sort();
        assert_eq!(c, (40000..=40009).collect::<Vec<_>>());
        assert_eq!(binder(0, 0).candidates(), vec![0]);
    }

    #[tokio::test]
    async fn a_busy_port_is_skipped_not_an_error() {
        let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = holder.local_addr().unwrap().port();
        let mut only_busy = RangeBinder {
            enabled: true,
            tls: None,
            range: Some(busy..=busy),
            cursor: 0,
        };
        assert!(
            only_busy
                .bind("127.0.0.1".parse().unwrap(), 1..=1)
                .await
                .is_err()
        );
        // A range of the busy port and its neighbour: the scan must get past the busy one
        // (unless the neighbour is taken too, which would make the check meaningless).
        let next = busy.checked_add(1).unwrap_or(busy - 1);
        if std::net::TcpListener::bind(("127.0.0.1", next)).is_err() {
            eprintln!("neighbour port {next} busy; checking the single-port refusal only");
            return;
        }
        let (lo, hi) = (busy.min(next), busy.max(next));
        for cursor in 0..2 {
            let mut b = RangeBinder {
                enabled: true,
                tls: None,
                range: Some(lo..=hi),
                cursor,
            };
            let s = b.bind("127.0.0.1".parse().unwrap(), 1..=1).await.unwrap();
            assert_eq!(s.local_addr().unwrap().port(), next);
        }
    }

    #[tokio::test]
    async fn disabled_passive_mode_binds_nothing() {
        let config = Config {
            pasv_enable: false,
            ..Config::default()
        };
        let mut b = RangeBinder::from_config(&config, None);
        assert!(b.bind("127.0.0.1".parse().unwrap(), 1..=1).await.is_err());
    }
}
