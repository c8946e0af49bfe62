//! Active mode (PORT / EPRT): the client names an address and rftpd connects to it.
//!
//! The worker cannot reach the network (it lives in a private namespace), so the monitor makes
//! the connection in the host's network, from the control connection's own address (and from
//! `ftp_data_port` with `connect_from_port_20`), and passes it in. libunftp, which connects
//! wherever a PORT tells it without checking (and knows no EPRT), is never given one: the
//! relay asks it for `EPSV` instead and answers the client's PORT/EPRT with the `200` in place
//! of libunftp's `229`. The binder then hands libunftp a stand-in listener inside the
//! namespace ([`stand_in_listener`]), already holding one connection from the client's address
//! (libunftp drops a data connection whose peer is not the control connection's address), and
//! a task splices that connection's other end to the monitor's real one (TLS, when on, is
//! ended in between: `datatls`). The monitor makes the stand-in listener and the connection to
//! it inside the namespace: the worker's seccomp filter forbids it `socket`, `bind` and
//! `connect`.
//!
//! It never asks for an address that has not passed vsftpd's rule (`control::port::allowed`):
//! with `port_promiscuous = false`, only the client's own address and a port of 1024 or
//! above. The relay checks it before asking; the monitor checks it again before connecting.

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::protocol::monitor::{Reply, Request, StandInSocket};
use crate::worker::state::{MonitorClient, SessionShared};

/// The worker's side, for one PORT/EPRT the relay has checked: get the connection and both
/// stand-in sockets from the monitor and keep them for libunftp's `EPSV`. Returns the line to
/// give libunftp, or `None` if no connection could be made (the failure is logged).
pub async fn prepare(
    shared: &Arc<SessionShared>,
    monitor: &MonitorClient,
    target: SocketAddr,
) -> Option<String> {
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
    let (listener, engine) = match stand_in_pair(monitor, 0).await {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(error = %e, "cannot splice an active connection");
            return None;
        }
    };
    shared.set_stand_in(Some(StandIn {
        real,
        protected,
        listener,
        engine,
    }));
    Some("EPSV".into())
}

/// A stand-in listener at `port` (0: any) inside the namespace and, waiting in its queue, a
/// connection to it from the client's address: both made by the monitor. Returns the listener
/// (for libunftp) and the connection's own end.
pub async fn stand_in_pair(
    monitor: &MonitorClient,
    port: u16,
) -> io::Result<(OwnedFd, std::net::TcpStream)> {
    let listener = monitor.stand_in(StandInSocket::Listener { port }).await?;
    let at = std::net::TcpListener::from(listener.try_clone()?)
        .local_addr()?
        .port();
    let engine = monitor
        .stand_in(StandInSocket::Connector { to: at })
        .await?;
    let engine = std::net::TcpStream::from(engine);
    engine.set_nonblocking(true)?;
    let _ = engine.set_nodelay(true);
    Ok((listener, engine))
}

/// The data TLS of a protected active connection: its state and generation (`datatls`).
type Protection = Option<(Arc<crate::worker::datatls::DataTls>, u64)>;

/// An active connection made by the monitor and the stand-in sockets it made for it in the
/// namespace, waiting for libunftp's EPSV.
#[derive(Debug)]
pub struct StandIn {
    real: std::net::TcpStream,
    protected: Protection,
    /// Listening on the namespace's loopback, with `engine`'s connection in its queue.
    listener: OwnedFd,
    /// The other end of the connection libunftp will accept (from the client's address).
    engine: std::net::TcpStream,
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

/// For libunftp's `EPSV` after a PORT/EPRT: the stand-in listener libunftp listens on (the
/// connection it accepts is already in its queue); a task splices that connection's other end
/// to the real one.
pub fn stand_in_listener(stand_in: StandIn) -> io::Result<tokio::net::TcpSocket> {
    let StandIn {
        real,
        protected,
        listener,
        engine,
    } = stand_in;
    let listener = std::net::TcpStream::from(listener);
    listener.set_nonblocking(true)?;
    real.set_nonblocking(true)?;
    let real = tokio::net::TcpStream::from_std(real)?;
    let _ = real.set_nodelay(true);
    let engine = tokio::net::TcpStream::from_std(engine)?;
    tokio::spawn(splice(engine, real, protected));
    Ok(tokio::net::TcpSocket::from_std_stream(listener))
}

/// Buffer per direction of the splice.
const SPLICE_BUFFER: usize = 256 * 1024;
