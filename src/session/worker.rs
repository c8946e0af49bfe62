//! The worker: libunftp serving the one client connection, in a tokio current-thread runtime.
//!
//! Before login it runs as root but only parses FTP and forwards USER/PASS to the monitor; it
//! never calls PAM or NSS. At login the storage backend jails it and drops to the user for
//! good (see `crate::jail`). It must never open a directory handle before the jail, and never
//! build the filesystem backend before `enter`.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use libunftp::ServerBuilder;
use libunftp::options::PassiveHost;

use crate::config::Config;
use crate::session::ExitReason;
use crate::session::authenticator::{MonitorAuthenticator, SessionUserProvider};
use crate::session::passive::RangeBinder;
use crate::session::protocol::Grant;
use crate::session::storage::JailedStorage;

/// What the libunftp extension points of one session share.
#[derive(Debug)]
pub struct SessionShared {
    pub config: Config,
    /// Our end of the socketpair to the monitor.
    pub monitor: Mutex<OwnedFd>,
    /// The accepted login, from the authenticator to the storage backend's `enter`.
    pub grant: Mutex<Option<(Grant, OwnedFd)>>,
    /// A second handle on the control connection, used only to send the one reply libunftp
    /// cannot (the writable-root refusal) just before the process exits.
    pub control: OwnedFd,
}

/// Greeting text after "220 ". libunftp wants a `'static` str; a worker serves one connection,
/// so leaking one small string per process is fine.
fn greeting(config: &Config) -> &'static str {
    let text = config
        .ftpd_banner
        .clone()
        .unwrap_or_else(|| "(rftpd)".to_string());
    Box::leak(text.into_boxed_str())
}

/// Serve the connection until it ends.
pub fn run(config: Config, client: std::net::TcpStream, monitor: OwnedFd) -> ExitReason {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the worker runtime");
            return ExitReason::Error;
        }
    };
    runtime.block_on(serve(config, client, monitor))
}

async fn serve(config: Config, client: std::net::TcpStream, monitor: OwnedFd) -> ExitReason {
    let control = match client.try_clone().map(OwnedFd::from) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::error!(error = %e, "cannot duplicate the control socket");
            return ExitReason::Error;
        }
    };
    if let Err(e) = client.set_nonblocking(true) {
        tracing::error!(error = %e, "cannot make the control socket non-blocking");
        return ExitReason::Error;
    }
    let stream = match tokio::net::TcpStream::from_std(client) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot register the control socket");
            return ExitReason::Error;
        }
    };
    let shared = Arc::new(SessionShared {
        config: config.clone(),
        monitor: Mutex::new(monitor),
        grant: Mutex::new(None),
        control,
    });

    let storage_shared = shared.clone();
    let mut builder = ServerBuilder::with_user_detail_provider(
        Box::new(move || JailedStorage::new(storage_shared.clone())),
        Arc::new(SessionUserProvider),
    )
    .authenticator(Arc::new(MonitorAuthenticator::new(shared.clone())))
    .greeting(greeting(&config))
    .idle_session_timeout(if config.idle_session_timeout == 0 {
        u64::MAX / 4
    } else {
        config.idle_session_timeout
    })
    .binder(RangeBinder::from_config(&config))
    // Our binder picks the port from the configured range; libunftp only passes this through.
    .passive_ports(1..=65535);
    if let Some(address) = config.pasv_address {
        builder = builder.passive_host(PassiveHost::Ip(address));
    }
    let server = match builder.build() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the FTP server");
            return ExitReason::Error;
        }
    };
    if let Err(e) = server.service(stream).await {
        tracing::debug!(error = %e, "control connection ended with an error");
    }
    ExitReason::Closed
}
