//! libunftp's `Binder` for passive mode, answered by the monitor: the worker lives in a network
//! namespace of its own, so the listening socket clients reach is made (and watched) by the
//! monitor in the host's network and passed in. Under `PROT P` libunftp is given a stand-in
//! (a listener the monitor made inside the namespace, on the same port) and the TLS is ended
//! here (`datatls`).

use std::io;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;

use async_trait::async_trait;
use libunftp::options::Binder;
use tokio::net::TcpSocket;

use crate::protocol::monitor::{Reply, Request};
use crate::worker::datatls;
use crate::worker::state::{MonitorClient, SessionShared};

/// The worker's side: libunftp's `Binder`, answered by the monitor.
#[derive(Debug)]
pub struct MonitorBinder {
    shared: Arc<SessionShared>,
    monitor: Arc<MonitorClient>,
}

impl MonitorBinder {
    pub fn new(shared: Arc<SessionShared>, monitor: Arc<MonitorClient>) -> Self {
        MonitorBinder { shared, monitor }
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
        let protected = self.shared.tls.as_ref().filter(|t| t.protected());
        let mut tries = 0;
        let answer = loop {
            let answer = self.monitor.ask(&Request::BindPassive).await?;
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
