//! The worker: libunftp serving the one client connection, in a tokio current-thread runtime.
//!
//! Before login it runs as root but only parses FTP and forwards USER/PASS to the monitor; it
//! never calls PAM or NSS. At login the storage backend jails it and drops to the user for
//! good (see `crate::jail`). It must never open a directory handle before the jail, and never
//! build the filesystem backend before `enter`.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libunftp::ServerBuilder;
use libunftp::options::{ActivePassiveMode, FtpsRequired, PassiveHost};

use crate::config::Config;
use crate::session::ExitReason;
use crate::session::authenticator::{MonitorAuthenticator, SessionUserProvider};
use crate::session::passive::RangeBinder;
use crate::session::policy::UserList;
use crate::session::protocol::Grant;
use crate::session::site;
use crate::session::storage::JailedStorage;
use crate::session::tls::{self, HandshakeLog};

/// What the libunftp extension points of one session share.
#[derive(Debug)]
pub struct SessionShared {
    pub config: Config,
    pub users: UserList,
    /// Our end of the socketpair to the monitor.
    pub monitor: Mutex<OwnedFd>,
    /// The accepted login, from the authenticator to the storage backend's `enter`.
    pub grant: Mutex<Option<(Grant, OwnedFd)>>,
    /// Set by `enter` once the session is jailed and logged in.
    pub logged_in: AtomicBool,
    /// Handshakes seen, when TLS is configured.
    pub tls: Option<Arc<HandshakeLog>>,
    /// Data transfers in progress (the idle timer does not run during one).
    pub transfers: std::sync::atomic::AtomicUsize,
    /// A second handle on the control connection, used only for the few replies libunftp
    /// cannot send (vsftpd's refusals and timeouts), each followed by the end of the process.
    control: OwnedFd,
}

impl SessionShared {
    /// Whether the control connection is (being) encrypted: then nothing may be written on the
    /// raw socket.
    pub fn control_tls(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.control_tls())
    }

    /// Send one final reply that libunftp cannot send, then end the session. Under TLS the
    /// reply cannot be written outside libunftp's TLS stream, so the connection just closes;
    /// the log always says why.
    pub fn refuse_and_exit(&self, reply: &str, reason: ExitReason) -> ! {
        if !self.control_tls()
            && let Ok(fd) = self.control.try_clone()
        {
            let mut raw = std::fs::File::from(fd);
            let _ = raw.write_all(reply.as_bytes());
            let _ = raw.write_all(b"\r\n");
        }
        std::process::exit(reason as i32);
    }
}

/// Greeting text after "220 " (libunftp wants a `'static` str; a worker serves one
/// connection, so leaking one small string per process is fine).
fn greeting(config: &Config, banner: &str) -> &'static str {
    let last = banner
        .lines()
        .last()
        .filter(|_| config.banner_file.is_some());
    let text = match (last, &config.ftpd_banner) {
        (Some(line), _) => line.to_string(),
        (None, Some(b)) => b.clone(),
        (None, None) => "(rftpd)".to_string(),
    };
    Box::leak(text.into_boxed_str())
}

/// The lines of a multi-line `banner_file` before its last, sent as `220-` continuation lines
/// ahead of libunftp's `220 ` greeting (which carries the last line).
fn banner_prelude(config: &Config, banner: &str) -> String {
    if config.banner_file.is_none() {
        return String::new();
    }
    let lines: Vec<&str> = banner.lines().collect();
    let mut out = String::new();
    for line in lines.iter().take(lines.len().saturating_sub(1)) {
        out.push_str("220-");
        out.push_str(&line.replace('\r', ""));
        out.push_str("\r\n");
    }
    out
}

/// Serve the connection until it ends.
pub fn run(
    config: Config,
    users: UserList,
    banner: String,
    client: std::net::TcpStream,
    monitor: OwnedFd,
) -> ExitReason {
    // A panic anywhere (libunftp unwraps a failed data-channel TLS handshake) ends the session
    // with a log line instead of leaving a half-working process behind.
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "session worker panicked; ending the session");
        std::process::exit(ExitReason::Error as i32);
    }));
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
    runtime.block_on(serve(config, users, banner, client, monitor))
}

async fn serve(
    config: Config,
    users: UserList,
    banner: String,
    client: std::net::TcpStream,
    monitor: OwnedFd,
) -> ExitReason {
    let control = match client.try_clone().map(OwnedFd::from) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::error!(error = %e, "cannot duplicate the control socket");
            return ExitReason::Error;
        }
    };
    // TLS material is read now, as root and before any client byte is parsed.
    let (tls_log, tls_config) = if config.ssl_enable {
        let log = Arc::new(HandshakeLog::default());
        match tls::load_identity(&config)
            .and_then(|key| tls::server_config(&config, key, log.clone()))
        {
            Ok(server_config) => (Some(log), Some(server_config)),
            Err(e) => {
                tracing::error!("TLS: {e}");
                return ExitReason::Error;
            }
        }
    } else {
        (None, None)
    };
    let prelude = banner_prelude(&config, &banner);
    if !prelude.is_empty() {
        let mut raw = &client;
        if raw.write_all(prelude.as_bytes()).is_err() {
            return ExitReason::Closed;
        }
    }
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
        users,
        monitor: Mutex::new(monitor),
        grant: Mutex::new(None),
        logged_in: AtomicBool::new(false),
        tls: tls_log,
        transfers: std::sync::atomic::AtomicUsize::new(0),
        control,
    });
    spawn_login_deadline(shared.clone());
    spawn_idle_timer(shared.clone());

    let storage_shared = shared.clone();
    let mut builder = ServerBuilder::with_user_detail_provider(
        Box::new(move || JailedStorage::new(storage_shared.clone())),
        Arc::new(SessionUserProvider),
    )
    .authenticator(Arc::new(MonitorAuthenticator::new(shared.clone())))
    .greeting(greeting(&config, &banner))
    .idle_session_timeout(libunftp_idle_timeout(&config))
    .binder(RangeBinder::from_config(&config, shared.tls.clone()))
    // Our binder picks the port from the configured range; libunftp only passes this through.
    .passive_ports(1..=65535)
    .active_passive_mode(if config.port_enable && config.port_promiscuous {
        ActivePassiveMode::ActiveAndPassive
    } else {
        ActivePassiveMode::PassiveOnly
    });
    if let Some(address) = config.pasv_address {
        builder = builder.passive_host(PassiveHost::Ip(address));
    }
    if let Some(server_config) = tls_config {
        // Login encryption is enforced by rftpd's own checks (with vsftpd's replies); data
        // encryption by the storage layer on every transfer, PASV and EPSV alike. libunftp's
        // PASV-only data check is kept as a first line.
        let data = if config.force_local_data_ssl && config.force_anon_data_ssl {
            FtpsRequired::All
        } else if config.force_local_data_ssl {
            FtpsRequired::Accounts
        } else {
            FtpsRequired::None
        };
        builder = builder
            .ftps_manual::<&str>(server_config)
            .ftps_required(FtpsRequired::None, data);
    }
    builder = site::register(builder);
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

/// libunftp's own idle timer is the fallback: it fires a little after rftpd's (below), which
/// handles plain-text sessions with vsftpd's `421 Timeout.`; under TLS, where rftpd cannot
/// write a reply, libunftp's fires and answers inside TLS (`221 Session timed out…`).
fn libunftp_idle_timeout(config: &Config) -> u64 {
    match config.idle_session_timeout {
        0 => u64::MAX / 4,
        secs => secs.saturating_add(2),
    }
}

/// `idle_session_timeout`: the kernel knows when the client last sent a byte on the control
/// connection (TCP_INFO), so rftpd can time the session out without reading the stream. A
/// transfer in progress keeps the session alive.
fn spawn_idle_timer(shared: Arc<SessionShared>) {
    let limit_ms = shared.config.idle_session_timeout.saturating_mul(1000);
    if limit_ms == 0 {
        return;
    }
    let tick = Duration::from_millis((limit_ms / 4).clamp(250, 5000));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(tick).await;
            if shared.control_tls() || shared.transfers.load(Ordering::SeqCst) > 0 {
                continue;
            }
            let silent_ms = match crate::sys::tcp_ms_since_last_receive(std::os::fd::AsFd::as_fd(
                &shared.control,
            )) {
                Ok(ms) => u64::from(ms),
                Err(_) => continue,
            };
            if silent_ms >= limit_ms {
                tracing::info!(seconds = silent_ms / 1000, "idle session timed out");
                shared.refuse_and_exit("421 Timeout.", ExitReason::Timeout);
            }
        }
    });
}

/// An unauthenticated connection may not hold a process longer than `login_timeout`.
fn spawn_login_deadline(shared: Arc<SessionShared>) {
    let limit = Duration::from_secs(shared.config.login_timeout.max(1));
    tokio::spawn(async move {
        tokio::time::sleep(limit).await;
        if !shared.logged_in.load(Ordering::SeqCst) {
            tracing::info!(
                seconds = limit.as_secs(),
                "no login in time; closing the connection"
            );
            shared.refuse_and_exit("421 Timeout.", ExitReason::Timeout);
        }
    });
}
