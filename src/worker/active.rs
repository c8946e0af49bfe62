//! Active mode (PORT / EPRT): the client names an address and rftpd connects to it.
//!
//! The worker cannot reach the network (it lives in a private namespace), so the monitor makes
//! the connection in the host's network, from the control connection's own address (and from
//! `ftp_data_port` with `connect_from_port_20`), and passes it in. libunftp, which knows only
//! PORT and connects wherever it is told without checking, is told an address inside the
//! worker's namespace instead: a one-shot listener whose one connection is spliced to the real
//! one (TLS, when on, runs end to end through the splice).
//!
//! It never asks for an address that has not passed vsftpd's rule (`control::port::allowed`):
//! with `port_promiscuous = false`, only the client's own address and a port of 1024 or
//! above. The relay checks it before asking; the monitor checks it again before connecting.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::jail::netns::unmapped;
use crate::protocol::monitor::{Reply, Request};
use crate::worker::state::{MonitorClient, SessionShared};

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
    monitor: &MonitorClient,
    target: SocketAddr,
    wait: Duration,
) -> Option<String> {
    let IpAddr::V4(stand_in) = unmapped(shared.client_ip) else {
        return None;
    };
    // PROT P: the TLS is ended here (`datatls`), between the stand-in and the real connection.
    let protected = shared
        .tls
        .as_ref()
        .filter(|t| t.protected())
        .map(|t| (t.clone(), t.begin(true)));
    if let Some(t) = shared.tls.as_ref().filter(|t| !t.protected()) {
        t.begin(false);
    }
    let answer = monitor.ask(&Request::ConnectActive(target)).await;
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
            std::process::exit(crate::protocol::ExitReason::Error as i32);
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
            if let Some((data, generation)) = protected {
                if let (Ok(real), Ok(engine)) = (real.into_std(), engine.into_std()) {
                    crate::worker::datatls::active(&data, generation, real, engine);
                }
                return;
            }
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
