//! libunftp's `Binder` for passive mode, answered by the monitor: the worker lives in a network
//! namespace of its own, so the listening socket clients reach is made (and watched) by the
//! monitor in the host's network and passed in. Under `PROT P` libunftp is given a stand-in
//! (a listener the monitor made inside the namespace, on the same port) and the TLS is ended
//! here (`datatls`).
//!
//! After each passive socket the binder asks the monitor for a *spare* (made the same way,
//! listening, with its trap) and holds it, so that the next PASV/EPSV costs no round trip:
//! it takes the spare and, in the background, tells the monitor so and gets the next one. A
//! spare older than half of `accept_timeout` is not used (the monitor shuts unused ones down
//! after `accept_timeout`); then the binder asks as before. It never makes a socket itself.

use std::io;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use libunftp::options::Binder;
use tokio::net::TcpSocket;
use tokio::task::JoinHandle;

use crate::protocol::monitor::{Reply, Request};
use crate::worker::datatls;
use crate::worker::state::{MonitorClient, SessionShared};

/// The worker's side: libunftp's `Binder`, answered by the monitor.
#[derive(Debug)]
pub struct MonitorBinder {
    shared: Arc<SessionShared>,
    monitor: Arc<MonitorClient>,
    /// The spare passive socket and when it came.
    spare: Option<(OwnedFd, Instant)>,
    /// The request for the next spare, under way.
    refill: Option<JoinHandle<Option<(OwnedFd, Instant)>>>,
}

impl MonitorBinder {
    pub fn new(shared: Arc<SessionShared>, monitor: Arc<MonitorClient>) -> Self {
        MonitorBinder {
            shared,
            monitor,
            spare: None,
            refill: None,
        }
    }

    /// The spare, if one came and is fresh enough to be listening still (one still on its
    /// way is waited for: that costs no more than asking).
    async fn take_spare(&mut self) -> Option<OwnedFd> {
        if let Some(refill) = self.refill.take() {
            self.spare = refill.await.ok().flatten();
        }
        let usable = self.shared.config.accept_timeout.max(1) * 1000 / 2;
        let (fd, came) = self.spare.take()?;
        (came.elapsed() < Duration::from_millis(usable)).then_some(fd)
    }

    /// Ask for the next spare in the background (for a spare just taken, this also tells
    /// the monitor it is in use).
    fn refill(&mut self) {
        let monitor = self.monitor.clone();
        self.refill = Some(tokio::spawn(async move {
            // After the tasks the I/O driver wakes next: the reply to this PASV/EPSV reaches
            // the client before the monitor is asked.
            tokio::task::yield_now().await;
            match monitor.ask(&Request::PassiveSpare).await {
                Ok((Reply::Bound, Some(fd))) => Some((fd, Instant::now())),
                Ok((Reply::NotBound, None)) | Err(_) => None,
                Ok(_) => {
                    tracing::error!(
                        "monitor answered a spare passive socket request out of protocol"
                    );
                    std::process::exit(crate::protocol::ExitReason::Error as i32);
                }
            }
        }));
    }

    /// A passive socket: the spare (no round trip), else the monitor's answer; then the next
    /// spare is asked for.
    async fn passive_socket(&mut self) -> io::Result<(Reply, Option<OwnedFd>)> {
        if let Some(fd) = self.take_spare().await {
            self.refill();
            return Ok((Reply::Bound, Some(fd)));
        }
        let answer = self.monitor.ask(&Request::BindPassive).await?;
        if matches!(answer, (Reply::Bound, Some(_))) {
            self.refill();
        }
        Ok(answer)
    }
}

#[async_trait]
impl Binder for MonitorBinder {
    async fn bind(
        &mut self,
        _in_namespace: IpAddr,
        _ignored: RangeInclusive<u16>,
    ) -> io::Result<TcpSocket> {
        *self
            .shared
            .passive_address
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
        // A PORT/EPRT: libunftp's EPSV gets the stand-in for the monitor's active connection
        // (`worker::active`), not a passive socket.
        if let Some(stand_in) = self.shared.take_stand_in() {
            return crate::worker::active::stand_in_listener(stand_in);
        }
        let shared = self.shared.clone();
        let protected = shared.tls.as_ref().filter(|t| t.protected());
        let mut tries = 0;
        let answer = loop {
            let answer = self.passive_socket().await?;
            let (Some(data), (Reply::Bound, Some(fd))) = (protected, &answer) else {
                break answer;
            };
            // PROT P: the TLS is ended in this process (`datatls`); libunftp gets a stand-in
            // on the same port inside the namespace, with a connection from the client's address
            // in its queue; the monitor makes both there. That port may be
            // taken there (rarely): another one is asked for.
            let fd = fd.try_clone()?;
            let port = std::net::TcpListener::from(fd.try_clone()?)
                .local_addr()?
                .port();
            let made = match crate::worker::active::stand_in_pair(&self.monitor, port).await {
                Ok((stand_in, engine)) => datatls::passive(data, fd, stand_in, engine),
                Err(e) => Err(e),
            };
            match made {
                Ok(stand_in) => return Ok(stand_in),
                Err(e) if tries < 3 && e.kind() == io::ErrorKind::AddrInUse => tries += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot set up a protected passive connection");
                    return Err(e);
                }
            }
        };
        match answer {
            (Reply::Bound, Some(fd)) => {
                if let Some(data) = &self.shared.tls {
                    data.begin(false);
                }
                let stream = std::net::TcpStream::from(fd);
                stream.set_nonblocking(true)?;
                *self
                    .shared
                    .passive_address
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = stream.local_addr().ok();
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
                std::process::exit(crate::protocol::ExitReason::Error as i32);
            }
        }
    }
}
