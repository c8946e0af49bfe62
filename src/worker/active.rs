//! Active mode (PORT / EPRT): the client names an address and rftpd connects to it.
//!
//! The worker cannot reach the network (it lives in a private namespace), so the monitor makes
//! the connection in the host's network, from the control connection's own address (and from
//! `ftp_data_port` with `connect_from_port_20`), and passes it in. libunftp, which knows only
//! PORT and connects wherever it is told without checking, is told an address inside the
//! worker's namespace instead: a one-shot listener whose one connection is spliced to the real
//! one (TLS, when on, runs end to end through the splice).
//!
//! libunftp's PORT is IPv4 only and it drops a data connection whose peer is not the control
//! connection's address, so for a client connected over IPv6 (EPRT `|2|`) the relay asks
//! libunftp for `EPSV` instead: the binder then hands libunftp a listener on the client's own
//! address inside the namespace ([`stand_in_listener`]) and connects to it *from* that
//! address, spliced to the monitor's real connection; the relay answers the EPRT with the
//! `200` in place of libunftp's `229`.
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
    let client = unmapped(shared.client_ip);
    // PROT P: the TLS is ended here (`datatls`), between the stand-in and the real connection.
    let protected = shared
        .tls
        .as_ref()
        .filter(|t| t.protected())
        .map(|t| (t.clone(), t.begin(true)));
    if let Some(t) = shared.tls.as_ref().filter(|t| !t.protected()) {
        t.begin(false);
    }
    let real = connect(monitor, target).await?;
    let IpAddr::V4(stand_in) = client else {
        // IPv6: the binder splices it at libunftp's EPSV.
        shared.set_stand_in(Some(StandIn { real, protected }));
        return Some("EPSV".into());
    };
    splice_port(real, stand_in, wait, protected).await
}

/// The data TLS of a protected active connection: its state and generation (`datatls`).
type Protection = Option<(Arc<crate::worker::datatls::DataTls>, u64)>;

/// An IPv6 client's active connection, made by the monitor, waiting for libunftp's EPSV.
#[derive(Debug)]
pub struct StandIn {
    real: std::net::TcpStream,
    protected: Protection,
}

/// Both ends of a stand-in: TLS ended in between under PROT P, else bytes copied.
async fn splice(
    mut engine: tokio::net::TcpStream,
    mut real: tokio::net::TcpStream,
    protected: Protection,
) {
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
}

/// The monitor's connection to `target` (it checks the address again).
async fn connect(monitor: &MonitorClient, target: SocketAddr) -> Option<std::net::TcpStream> {
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
    Some(real)
}

/// IPv4: a one-shot listener on the client's address, whose one connection (libunftp's, at
/// the PORT line returned) is spliced to `real`.
async fn splice_port(
    real: std::net::TcpStream,
    stand_in: std::net::Ipv4Addr,
    wait: Duration,
    protected: Protection,
) -> Option<String> {
    let spliced = async {
        real.set_nonblocking(true)?;
        let real = tokio::net::TcpStream::from_std(real)?;
        let _ = real.set_nodelay(true);
        let listener = tokio::net::TcpListener::bind((stand_in, 0)).await?;
        let inner = listener.local_addr()?;
        tokio::spawn(async move {
            let Ok(Ok((engine, _))) = tokio::time::timeout(wait, listener.accept()).await else {
                return;
            };
            drop(listener);
            splice(engine, real, protected).await;
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

/// IPv6 (for libunftp's `EPSV` after an EPRT): the socket libunftp will listen on, bound to
/// the client's address inside the namespace; a task connects to it from that same address
/// (libunftp accepts only a peer with the control connection's address) once it listens, and
/// splices that connection to `real`.
pub fn stand_in_listener(
    client: IpAddr,
    stand_in: StandIn,
    wait: Duration,
) -> io::Result<tokio::net::TcpSocket> {
    let StandIn { real, protected } = stand_in;
    let socket = tokio::net::TcpSocket::new_v6()?;
    socket.bind(SocketAddr::new(client, 0))?;
    let listening = socket.local_addr()?;
    real.set_nonblocking(true)?;
    let real = tokio::net::TcpStream::from_std(real)?;
    let _ = real.set_nodelay(true);
    tokio::spawn(async move {
        // libunftp listens right after the bind returns: retry briefly, bounded by `wait`.
        let deadline = tokio::time::Instant::now() + wait;
        let engine = loop {
            let Ok(from) = tokio::net::TcpSocket::new_v6() else {
                return;
            };
            if from.bind(SocketAddr::new(client, 0)).is_err() {
                return;
            }
            match from.connect(listening).await {
                Ok(stream) => break stream,
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reach libunftp's stand-in listener");
                    return;
                }
            }
        };
        let _ = engine.set_nodelay(true);
        splice(engine, real, protected).await;
    });
    Ok(socket)
}

/// Buffer per direction of the splice.
const SPLICE_BUFFER: usize = 256 * 1024;
