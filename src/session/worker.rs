//! The worker: libunftp and the control-connection relay, for one client, in a tokio
//! current-thread runtime inside a private network namespace.
//!
//! Before login it runs as root but only parses FTP (in the relay) and asks the monitor to
//! decide logins; it never calls PAM or NSS. At login the storage backend jails it and drops to
//! the user for good (see `crate::jail`). It must never open a directory handle before the
//! jail, never build the filesystem backend before `enter`, and never reach the network except
//! through the client's connection and the data sockets the monitor hands it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use libunftp::ServerBuilder;
use libunftp::options::{ActivePassiveMode, FtpsRequired, PassiveHost};
use tokio::net::{TcpListener, TcpSocket};

use crate::config::Config;
use crate::session::authenticator::{SessionUserProvider, TokenAuthenticator};
use crate::session::control::{self, RelaySetup};
use crate::session::passive::MonitorBinder;
use crate::session::policy::UserList;
use crate::session::protocol::{Grant, MAX_MESSAGE, Reply, Request};
use crate::session::storage::JailedStorage;
use crate::session::tls::{self, HandshakeLog};
use crate::session::{ExitReason, netns, site};
use crate::sys;

/// What the relay and libunftp's extension points of one session share.
#[derive(Debug)]
pub struct SessionShared {
    pub config: Config,
    /// The client's address (as the host sees it).
    pub client_ip: IpAddr,
    pub users: UserList,
    /// Our end of the socketpair to the monitor (non-blocking, on the runtime's reactor).
    monitor: tokio::sync::Mutex<tokio::io::unix::AsyncFd<OwnedFd>>,
    /// The accepted login, from the relay to the storage backend's `enter`.
    pub grant: Mutex<Option<(Grant, OwnedFd)>>,
    /// The one-time password the relay gives libunftp once the monitor accepted a login.
    pub login_token: String,
    /// Set by `enter` once the session is jailed and logged in.
    pub logged_in: AtomicBool,
    /// Whether this session may rename (decided at `enter`).
    pub rename_allowed: AtomicBool,
    /// Handshakes seen, when TLS is configured.
    pub tls: Option<Arc<HandshakeLog>>,
    /// Data transfers in progress (the idle timer does not run during one).
    pub transfers: AtomicUsize,
    /// Data connections that have reached the storage layer (for `accept_timeout`).
    pub data_connections: AtomicUsize,
    /// Options of the last LIST/NLST (libunftp drops them; the relay passes them on here).
    list_flags: Mutex<ListFlags>,
    /// libunftp's working directory, mirrored for SITE CHMOD's relative paths (libunftp gives
    /// SITE handlers none): set by the storage backend's `cwd`, moved up by the relay on CDUP
    /// (which libunftp handles without the storage backend).
    working_dir: Mutex<std::path::PathBuf>,
    /// The last reply of a session that must end, for the relay to send (inside TLS if on).
    ending: Mutex<Option<(String, ExitReason)>>,
    ending_notify: tokio::sync::Notify,
}

impl SessionShared {
    pub fn working_dir(&self) -> std::path::PathBuf {
        self.working_dir
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_working_dir(&self, path: std::path::PathBuf) {
        *self.working_dir.lock().unwrap_or_else(|p| p.into_inner()) = path;
    }

    /// CDUP / XCUP: what libunftp does to its own copy (`PathBuf::pop`, so `/` stays `/`).
    pub fn working_dir_up(&self) {
        self.working_dir
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
    }

    /// One request/reply round trip with the monitor, on the runtime's own thread (no
    /// blocking-pool hop: a passive socket costs one socketpair round trip). One at a time.
    pub async fn ask_monitor(
        &self,
        request: &Request,
    ) -> std::io::Result<(Reply, Option<OwnedFd>)> {
        let channel = self.monitor.lock().await;
        let mut bytes = request.encode();
        let sent = sys::send_message_async(&channel, &bytes, None).await;
        // A login request carries the password.
        bytes.iter_mut().for_each(|b| *b = 0);
        sent?;
        let mut buf = vec![0u8; MAX_MESSAGE];
        let (len, fd) = sys::recv_message_async(&channel, &mut buf).await?;
        if len == 0 {
            return Err(std::io::Error::other("monitor closed the channel"));
        }
        let reply = Reply::decode(&buf[..len]).map_err(std::io::Error::other)?;
        Ok((reply, fd))
    }

    /// End the session with one last reply (vsftpd's refusals and timeouts). The relay sends
    /// it and closes the connection; callers return an error meanwhile.
    pub fn end_session(&self, reply: &str, reason: ExitReason) {
        let mut ending = self.ending.lock().unwrap_or_else(|p| p.into_inner());
        if ending.is_none() {
            *ending = Some((reply.to_string(), reason));
        }
        self.ending_notify.notify_one();
    }

    pub fn take_ending(&self) -> Option<(String, ExitReason)> {
        self.ending.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    pub async fn ending_notified(&self) {
        self.ending_notify.notified().await
    }

    /// The relay saw `LIST`/`NLST` with these options.
    pub fn set_list_flags(&self, flags: ListFlags) {
        *self.list_flags.lock().unwrap_or_else(|p| p.into_inner()) = flags;
    }

    /// The options of the listing now being produced (consumed).
    pub fn take_list_flags(&self) -> ListFlags {
        std::mem::take(&mut *self.list_flags.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn may_rename(&self) -> bool {
        self.rename_allowed
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// `ls`-style options of a listing command that libunftp would drop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListFlags {
    /// `-a`: dot files too.
    pub all: bool,
    /// `-R`: subdirectories too (only with `ls_recurse_enable`).
    pub recursive: bool,
}

impl ListFlags {
    /// Options from a `LIST`/`NLST` argument such as `-la dir` (only leading `-x` words).
    pub fn parse(argument: &str) -> ListFlags {
        let mut flags = ListFlags::default();
        for word in argument
            .split_whitespace()
            .take_while(|w| w.starts_with('-') && *w != "--")
        {
            flags.all |= word.contains('a');
            flags.recursive |= word.contains('R');
        }
        flags
    }
}

/// The greeting: `banner_file` as `220-` lines and a final `220 ` line, or `ftpd_banner`.
fn greeting(config: &Config, banner: &str) -> String {
    let lines: Vec<&str> = banner.lines().collect();
    if config.banner_file.is_some() && !lines.is_empty() {
        let mut out = String::new();
        for line in &lines[..lines.len() - 1] {
            out.push_str(&format!("220-{}\r\n", line.replace('\r', "")));
        }
        out.push_str(&format!(
            "220 {}\r\n",
            lines[lines.len() - 1].replace('\r', "")
        ));
        return out;
    }
    format!(
        "220 {}\r\n",
        config.ftpd_banner.as_deref().unwrap_or("(rftpd)")
    )
}

/// A fresh random token (hex), from the kernel's generator.
fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 24];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// This process's one session, once set up: where panics report to (see `run`) and what
/// [`settle_after_login`] watches.
static SESSION: OnceLock<Arc<SessionShared>> = OnceLock::new();

/// Serve the connection until it ends.
pub fn run(
    config: Config,
    users: UserList,
    banner: String,
    client: std::net::TcpStream,
    monitor: OwnedFd,
) -> ExitReason {
    let (client_ip, local_ip) = match (client.peer_addr(), client.local_addr()) {
        (Ok(p), Ok(l)) => (netns::unmapped(p.ip()), netns::unmapped(l.ip())),
        _ => return ExitReason::Closed,
    };
    // Still one thread: the namespace switch covers the whole process.
    if let Err(e) = netns::isolate(client_ip) {
        tracing::error!(error = %e, "cannot isolate the session's network; ending it");
        return ExitReason::Error;
    }
    // A panic (libunftp unwraps a failed data-channel TLS handshake) ends the session with an
    // FTP reply and a log line instead of leaving a half-working process behind.
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "session worker panicked; ending the session");
        match SESSION.get() {
            Some(shared) => {
                let text = if info
                    .location()
                    .is_some_and(|l| l.file().contains("datachan"))
                {
                    "425 Security: TLS negotiation on the data connection failed."
                } else {
                    "421 Internal error, closing the session."
                };
                shared.end_session(text, ExitReason::Error);
            }
            None => std::process::exit(ExitReason::Error as i32),
        }
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
    let session = Session {
        config,
        users,
        banner,
        client,
        monitor,
        client_ip,
        local_ip,
    };
    // Boxed: block_on's frames then pass a pointer around, not copies of the whole future.
    runtime.block_on(Box::pin(settle_after_login(session.serve())))
}

/// Drive the session; once it has logged in, give back the heap and stack pages the login
/// path used (TLS handshake, libunftp's login, the jail). Done here, in the outermost poll,
/// where the stack is shallowest.
async fn settle_after_login<F: std::future::Future<Output = ExitReason>>(session: F) -> ExitReason {
    let mut session = std::pin::pin!(session);
    let mut settled = false;
    std::future::poll_fn(move |cx| {
        let poll = session.as_mut().poll(cx);
        if !settled
            && SESSION
                .get()
                .is_some_and(|s| s.logged_in.load(Ordering::SeqCst))
        {
            settled = true;
            crate::sys::release_free_heap();
            crate::sys::discard_stack_below_caller();
        }
        poll
    })
    .await
}

struct Session {
    config: Config,
    users: UserList,
    banner: String,
    client: std::net::TcpStream,
    monitor: OwnedFd,
    client_ip: IpAddr,
    local_ip: IpAddr,
}

impl Session {
    async fn serve(self) -> ExitReason {
        let config = self.config;
        // TLS material is read now, as root and before any client byte is parsed.
        let (tls_log, tls_config) = if config.ssl_enable {
            let log = Arc::new(HandshakeLog::default());
            match tls::read_identity(&config)
                .and_then(|files| tls::server_config(&config, files, log.clone()))
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
        let login_token = match random_token() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "no randomness for the login token");
                return ExitReason::Error;
            }
        };
        let Ok((relay_end, engine_end)) = internal_connection(self.client_ip).await else {
            tracing::error!("cannot connect the relay to the FTP engine");
            return ExitReason::Error;
        };
        if self.client.set_nonblocking(true).is_err() {
            return ExitReason::Error;
        }
        let Ok(client) = tokio::net::TcpStream::from_std(self.client) else {
            return ExitReason::Error;
        };
        // Replies are small and each one is awaited: Nagle's algorithm against the peer's
        // delayed ACK would add up to 40 ms to every command.
        let _ = client.set_nodelay(true);
        let monitor = match nix::fcntl::fcntl(
            &self.monitor,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(std::io::Error::from)
        .and_then(|_| sys::async_fd(self.monitor))
        {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "cannot watch the monitor channel");
                return ExitReason::Error;
            }
        };
        let shared = Arc::new(SessionShared {
            users: self.users,
            monitor: tokio::sync::Mutex::new(monitor),
            grant: Mutex::new(None),
            login_token,
            logged_in: AtomicBool::new(false),
            rename_allowed: AtomicBool::new(false),
            tls: tls_log,
            transfers: AtomicUsize::new(0),
            data_connections: AtomicUsize::new(0),
            list_flags: Mutex::new(ListFlags::default()),
            working_dir: Mutex::new(std::path::PathBuf::from("/")),
            ending: Mutex::new(None),
            ending_notify: tokio::sync::Notify::new(),
            config: config.clone(),
            client_ip: self.client_ip,
        });
        let _ = SESSION.set(shared.clone());

        let storage_shared = shared.clone();
        let mut builder = ServerBuilder::with_user_detail_provider(
            Box::new(move || JailedStorage::new(storage_shared.clone())),
            Arc::new(SessionUserProvider),
        )
        .authenticator(Arc::new(TokenAuthenticator::new(shared.clone())))
        .greeting("rftpd")
        // The relay owns the idle timeout (with vsftpd's reply).
        .idle_session_timeout(u64::MAX / 4)
        .binder(MonitorBinder::new(shared.clone()))
        // The monitor picks the port from the configured range; libunftp only passes this through.
        .passive_ports(1..=65535)
        // Active connections are made by the monitor and handed to libunftp via a stand-in
        // address (see `active`); the relay refuses PORT/EPRT when port_enable is off.
        .active_passive_mode(if config.port_enable {
            ActivePassiveMode::ActiveAndPassive
        } else {
            ActivePassiveMode::PassiveOnly
        });
        // Inside the namespace the engine's own address is a loopback one: PASV must name the
        // address the client connected to (or pasv_address).
        let pasv_ip = config.pasv_address.or(match self.local_ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        });
        if let Some(address) = pasv_ip {
            builder = builder.passive_host(PassiveHost::Ip(address));
        }
        let acceptor = tls_config
            .as_ref()
            .map(|c| tokio_rustls::TlsAcceptor::from(c.clone()));
        if let Some(server_config) = tls_config {
            // Encryption is enforced by rftpd: logins in the relay, data on every transfer in
            // the storage layer (libunftp's own checks cannot see the relay's TLS).
            builder = builder
                .ftps_manual::<&str>(server_config)
                .ftps_required(FtpsRequired::None, FtpsRequired::None);
        }
        builder = site::register(builder);
        let server = match builder.build() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the FTP server");
                return ExitReason::Error;
            }
        };
        tokio::spawn(async move {
            if let Err(e) = server.service(engine_end).await {
                tracing::debug!(error = %e, "FTP engine connection ended with an error");
            }
        });
        let setup = RelaySetup {
            shared: shared.clone(),
            tls: acceptor,
            greeting: greeting(&config, &self.banner),
        };
        control::run(client, relay_end, setup).await
    }
}

/// A TCP connection inside the namespace from the client's own address to a loopback
/// listener: (relay's end, libunftp's end). libunftp thus sees the client's address.
async fn internal_connection(
    client_ip: IpAddr,
) -> std::io::Result<(tokio::net::TcpStream, tokio::net::TcpStream)> {
    let (listen_at, socket) = match client_ip {
        IpAddr::V4(_) => (
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            TcpSocket::new_v4()?,
        ),
        IpAddr::V6(_) => (
            SocketAddr::from((Ipv6Addr::LOCALHOST, 0)),
            TcpSocket::new_v6()?,
        ),
    };
    let listener = TcpListener::bind(listen_at).await?;
    socket.bind(SocketAddr::new(client_ip, 0))?;
    let (connected, accepted) =
        tokio::join!(socket.connect(listener.local_addr()?), listener.accept());
    let relay_end = connected?;
    let (engine_end, from) = accepted?;
    relay_end.set_nodelay(true)?;
    engine_end.set_nodelay(true)?;
    if from != relay_end.local_addr()? {
        return Err(std::io::Error::other(
            "unexpected peer on the engine's listener",
        ));
    }
    Ok((relay_end, engine_end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings_follow_vsftpd() {
        let config = Config::default();
        assert_eq!(greeting(&config, ""), "220 (rftpd)\r\n");
        let config = Config {
            ftpd_banner: Some("Hello".into()),
            ..Config::default()
        };
        assert_eq!(greeting(&config, ""), "220 Hello\r\n");
        let config = Config {
            banner_file: Some("/x".into()),
            ..Config::default()
        };
        assert_eq!(
            greeting(&config, "one\ntwo\r\nthree\n"),
            "220-one\r\n220-two\r\n220 three\r\n"
        );
    }
}
