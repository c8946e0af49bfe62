//! The worker: the logged-in user's process, forked by the monitor only after it accepted a
//! login, serving the session with libunftp.
//!
//! Before it reads a byte, and while it still has one thread, it leaves the host's network
//! (for the namespace the monitor made for it, whose loopback carries the client's address, so
//! libunftp sees that address on its connection), makes the in-process connection libunftp is
//! served through (the last sockets it makes itself: its filter forbids `socket(AF_INET…)`),
//! then chroots into the directory the monitor opened and drops to the user for good
//! (`crate::jail`). Only then does it start its runtime and read the commands the pre-login
//! process forwards over the link. It never calls PAM or NSS, never opens a directory outside
//! the jail, and reaches the network only through the data sockets the monitor hands it.
//!
//! Layout: [`relay`] (link ↔ libunftp, the commands libunftp would get wrong), [`state`] (what
//! the relay and libunftp's extension points share; the monitor client), [`authenticator`],
//! [`binder`] (passive sockets), [`active`] (PORT/EPRT), [`site`] (SITE commands), `preamble`
//! (what the pre-login process hands over first).

pub mod active;
pub mod arguments;
pub mod authenticator;
pub mod binder;
pub mod client;
pub mod datatls;
mod preamble;
pub mod relay;
pub mod site;
pub mod state;
pub mod status;
pub mod tls_transfer;
pub mod unanswered;
pub mod upload_owner;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libunftp::ServerBuilder;
use libunftp::options::{ActivePassiveMode, FtpsRequired, PassiveHost};

use crate::config::Config;
use crate::jail::netns;
use crate::monitor::Addresses;
use crate::protocol::ExitReason;
use crate::protocol::event::Event;
use crate::protocol::monitor::{Grant, Request};
use crate::storage::JailedStorage;
use crate::sys;
use crate::tls::{self, HandshakeLog, IdentityFiles};
use authenticator::{SessionUserProvider, TokenAuthenticator};
use binder::MonitorBinder;
use datatls::DataTls;
use preamble::{client_socket, nonblocking_tcp, read_preamble};
use relay::RelaySetup;
use state::{MonitorClient, SessionShared};

/// vsftpd's reply, word for word but for the program name; users and scripts search for it.
const WRITABLE_ROOT_REFUSAL: &str =
    "500 OOPS: rftpd: refusing to run with writable root inside chroot()";

/// How long the pre-login process has to send the preamble.
const PREAMBLE_TIMEOUT: Duration = Duration::from_secs(4);

/// What the monitor forks the worker with.
pub struct Start<'a> {
    pub config: &'a Config,
    pub grant: Grant,
    /// The start (and, when jailed, jail) directory, opened by the monitor.
    pub dir: OwnedFd,
    /// The worker's end of its link to the pre-login process (a stream socket).
    pub link: OwnedFd,
    /// The worker's end of its channel to the monitor.
    pub channel: OwnedFd,
    /// The network namespace the monitor made for it (`crate::jail::netns`).
    pub network: OwnedFd,
    pub addresses: Addresses,
    pub tls_files: Option<IdentityFiles>,
    pub parent: nix::unistd::Pid,
}

/// A fresh random token (hex), from the kernel's generator.
fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Readiness events taken from the kernel per poll: a session has a handful of descriptors.
const IO_EVENTS_PER_TICK: usize = 32;

/// This process's one session, once set up: where panics report to.
static SESSION: OnceLock<Arc<SessionShared>> = OnceLock::new();

/// The in-process connection libunftp is served through, from the client's own address to a
/// loopback listener inside the namespace: (relay's end, libunftp's end). Blocking; one thread.
fn internal_connection(
    client_ip: IpAddr,
) -> std::io::Result<(std::net::TcpStream, std::net::TcpStream)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrStorage, bind, socket};
    use std::os::fd::AsRawFd;
    let (listen_at, family) = match client_ip {
        IpAddr::V4(_) => (
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            AddressFamily::Inet,
        ),
        IpAddr::V6(_) => (
            SocketAddr::from((Ipv6Addr::LOCALHOST, 0)),
            AddressFamily::Inet6,
        ),
    };
    let listener = std::net::TcpListener::bind(listen_at)?;
    let socket = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    bind(
        socket.as_raw_fd(),
        &SockaddrStorage::from(SocketAddr::new(client_ip, 0)),
    )?;
    nix::sys::socket::connect(
        socket.as_raw_fd(),
        &SockaddrStorage::from(listener.local_addr()?),
    )?;
    let relay_end = std::net::TcpStream::from(socket);
    let (engine_end, from) = listener.accept()?;
    if from != relay_end.local_addr()? {
        return Err(std::io::Error::other(
            "unexpected peer on the engine's listener",
        ));
    }
    relay_end.set_nodelay(true)?;
    engine_end.set_nodelay(true)?;
    Ok((relay_end, engine_end))
}

/// Serve the session until it ends. Never returns to the monitor's code: the caller exits.
pub fn run(start: Start<'_>) -> ExitReason {
    match prepare(start) {
        Ok((runtime, session)) => runtime.block_on(session),
        Err(reason) => reason,
    }
}

/// The session, ready to run: limits, jail, drop, seccomp, and the runtime to run it on.
///
/// Not inlined into `run`: `run`'s frame stays under every poll for the whole session, while
/// this one (several KiB: the session and its future are built here) returns first, so its
/// pages are dead stack that an idle session gives back (`sys::discard_stack_below_caller`).
#[inline(never)]
fn prepare(start: Start<'_>) -> Result<(tokio::runtime::Runtime, SessionFuture), ExitReason> {
    let config = start.config;
    let client_ip = netns::unmapped(start.addresses.client.ip());
    // SECURITY: every step up to the jail runs before anything is read from the link.
    if let Err((what, e)) = crate::jail::sandbox::limit_worker(config) {
        tracing::error!(limit = what, error = %e, "cannot limit the worker; ending the session");
        return Err(ExitReason::Error);
    }
    if let Err(e) = netns::enter(&start.network) {
        tracing::error!(error = %e, "cannot isolate the session's network; ending it");
        return Err(ExitReason::Error);
    }
    drop(start.network);
    let (relay_end, engine_end) = match internal_connection(client_ip) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::error!(error = %e, "cannot connect the relay to the FTP engine");
            return Err(ExitReason::Error);
        }
    };
    // The one-time token libunftp is logged in with (read before the jail has no /dev).
    let login_token = match random_token() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "no randomness for the login token");
            return Err(ExitReason::Error);
        }
    };
    // SECURITY: whatever libunftp logs at any level, the token never reaches a log.
    crate::logging::redact(&login_token);
    let grant = start.grant;
    crate::jail::enter(&grant, start.dir);
    crate::jail::die_with_parent(start.parent);
    let umask = if grant.anonymous {
        config.anon_umask
    } else {
        config.local_umask
    };
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask.0));
    // vsftpd refuses a writable jail root unless allowed — and always for anonymous users.
    // Checked as the user, after the drop; answered once the client is reachable (below).
    let refuse_writable = (grant.anonymous || (grant.jailed && !config.allow_writeable_chroot))
        && crate::jail::root_is_writable();
    // The monitor logs the login as accepted, or refused, on this word (nothing else is
    // reported before it).
    let started = Request::Event(Event::Started {
        writable_root_refused: refuse_writable,
    });
    if let Err(e) = sys::send_message(start.channel.as_fd(), &started.encode(), None) {
        tracing::error!(error = %e, "cannot reach the monitor");
        return Err(ExitReason::Error);
    }
    // The monitor's login path (PAM, the hash) left freed memory behind; give it back.
    sys::release_free_heap();
    // And the stack below this frame: the monitor's frames the fork was made from.
    sys::discard_stack_below_caller();
    // SECURITY: the worker's allow-list, before its runtime exists and before it reads a byte
    // (the runtime's threads inherit it).
    if config.seccomp_sandbox {
        // No socket of its own from here on: the monitor makes every one (`monitor::standin`).
        if let Err(e) = crate::jail::seccomp::install(crate::jail::seccomp::Role::Worker) {
            tracing::error!(error = %e, "cannot install the worker's seccomp filter; ending the session");
            std::process::abort();
        }
    }
    // A panic ends the session with an FTP reply and a log line instead of leaving a
    // half-working process behind. (libunftp unwraps a failed data-channel TLS handshake, but
    // it is never given a TLS data connection: `datatls` ends those.)
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
        // A session waits on a handful of descriptors; tokio's default event array (1024
        // entries, 12 KiB) would be most of an idle session's own heap.
        .max_io_events_per_tick(IO_EVENTS_PER_TICK)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the worker runtime");
            return Err(ExitReason::Error);
        }
    };
    let session = Session {
        config: config.clone(),
        grant,
        link: start.link,
        channel: start.channel,
        relay_end,
        engine_end,
        addresses: start.addresses,
        tls_files: start.tls_files,
        login_token,
        refuse_writable,
    };
    Ok((runtime, Box::pin(session.serve())))
}

/// The whole session, on the heap.
type SessionFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ExitReason>>>;

struct Session {
    config: Config,
    grant: Grant,
    link: OwnedFd,
    channel: OwnedFd,
    relay_end: std::net::TcpStream,
    engine_end: std::net::TcpStream,
    addresses: Addresses,
    tls_files: Option<IdentityFiles>,
    login_token: String,
    /// The jail root is writable and that is refused (answered once the client is here).
    refuse_writable: bool,
}

impl Session {
    async fn serve(self) -> ExitReason {
        let config = self.config;
        let link = match nix::fcntl::fcntl(
            &self.link,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(std::io::Error::from)
        .and_then(|_| sys::async_fd(self.link))
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot use the link to the pre-login process");
                return ExitReason::Error;
            }
        };
        let (preamble, handed) =
            match tokio::time::timeout(PREAMBLE_TIMEOUT, read_preamble(&link)).await {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "bad preamble from the pre-login process");
                    return ExitReason::Error;
                }
                Err(_) => {
                    tracing::error!("no preamble from the pre-login process in time");
                    return ExitReason::Error;
                }
            };
        // SECURITY: what was handed over must be a connected TCP socket (the client's).
        let client = match handed {
            Some(fd) => match client_socket(fd) {
                Ok(c) => relay::Client::Direct(c),
                Err(e) => {
                    tracing::error!(error = %e, "the pre-login process handed over something else");
                    return ExitReason::Error;
                }
            },
            None => match tokio::net::UnixStream::from_std(std::os::unix::net::UnixStream::from(
                link.into_inner(),
            )) {
                Ok(l) => relay::Client::Link(l),
                Err(_) => return ExitReason::Error,
            },
        };
        if self.refuse_writable {
            tracing::warn!(
                user = %crate::logging::Escaped(&self.grant.user_name),
                "refusing session: jail root is writable by the user (allow_writeable_chroot = false, or anonymous)"
            );
            let mut client = client;
            let _ = tokio::io::AsyncWriteExt::write_all(
                &mut client,
                format!("{WRITABLE_ROOT_REFUSAL}\r\n").as_bytes(),
            )
            .await;
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut client).await;
            return ExitReason::Refused;
        }
        // Moved, not copied: the certificate and key are parsed from these bytes at the first
        // data-connection handshake, and no second copy of the key stays behind.
        let (data_tls, tls_config) = match (self.tls_files, config.ssl_enable) {
            (Some(files), true) => {
                let log = Arc::new(HandshakeLog::for_data_connections());
                match tls::server_config(
                    &config,
                    tls::Identity::Files(files),
                    log,
                    preamble.tls_sessions.clone(),
                ) {
                    Ok((server_config, _)) => {
                        let required = if self.grant.anonymous {
                            config.force_anon_data_ssl
                        } else {
                            config.force_local_data_ssl
                        };
                        let data = DataTls::new(
                            server_config.clone(),
                            required,
                            preamble.control_tls && preamble.prot_private == Some(true),
                            Duration::from_secs(config.accept_timeout.max(1)),
                        );
                        (Some(Arc::new(data)), Some(server_config))
                    }
                    Err(e) => {
                        tracing::error!("TLS: {e}");
                        return ExitReason::Error;
                    }
                }
            }
            _ => (None, None),
        };
        let login_token = self.login_token;
        let (relay_end, engine_end) = match (
            nonblocking_tcp(self.relay_end),
            nonblocking_tcp(self.engine_end),
        ) {
            (Ok(r), Ok(e)) => (r, e),
            _ => return ExitReason::Error,
        };
        let monitor = match nix::fcntl::fcntl(
            &self.channel,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(std::io::Error::from)
        .and_then(|_| sys::async_fd(self.channel))
        {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "cannot watch the monitor channel");
                return ExitReason::Error;
            }
        };
        let client_ip = netns::unmapped(self.addresses.client.ip());
        let start_dir = self.grant.start_dir.clone();
        let jailed = self.grant.jailed;
        let user_name = self.grant.user_name.clone();
        let monitor = Arc::new(MonitorClient::new(monitor));
        // chown_uploads: only an anonymous session's storage may ask (vsftpd's rule).
        let upload_owner = (self.grant.anonymous && config.chown_uploads)
            .then(|| Arc::new(upload_owner::UploadOwner::new(monitor.clone())));
        let shared = Arc::new(SessionShared::new(
            config.clone(),
            client_ip,
            self.grant,
            login_token,
            data_tls,
        ));
        let _ = SESSION.set(shared.clone());

        let storage_shared = shared.clone();
        let mut builder = ServerBuilder::with_user_detail_provider(
            Box::new(move || JailedStorage::new(storage_shared.clone(), upload_owner.clone())),
            Arc::new(SessionUserProvider),
        )
        .authenticator(Arc::new(TokenAuthenticator::new(shared.clone())))
        .greeting("rftpd")
        // The relay owns the idle timeout (with vsftpd's reply).
        .idle_session_timeout(u64::MAX / 4)
        .binder(MonitorBinder::new(shared.clone(), monitor.clone()))
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
        let pasv_ip = config.pasv_address.or(match self.addresses.local_ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        });
        if let Some(address) = pasv_ip {
            builder = builder.passive_host(PassiveHost::Ip(address));
        }
        if let Some(server_config) = tls_config {
            // Encryption is enforced by rftpd: logins in the pre-login process, data on every
            // transfer in the storage layer (libunftp's own checks cannot see the control TLS).
            // libunftp never does TLS itself: the relay answers PBSZ/PROT, so its data
            // connections stay plain, and `datatls` ends the client's TLS (libunftp's FEAT
            // lists AUTH TLS, PBSZ and PROT only with this set).
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
        // Events for the monitor's records, sent between the binder's round trips.
        // Boxed: the channel's first block holds 32 slots from the start, unused until a transfer.
        let (events, mut queue) = tokio::sync::mpsc::channel::<Box<Event>>(state::EVENT_QUEUE);
        shared.set_events(events);
        // Each event is held for the next request to the monitor to carry, at most
        // EVENT_HOLD (see `MonitorClient`); the last ones are sent when the queue closes.
        let teller = monitor.clone();
        let forwarder = tokio::spawn(async move {
            'events: while let Some(first) = queue.recv().await {
                teller.hold(*first);
                let deadline = tokio::time::Instant::now() + state::EVENT_HOLD;
                loop {
                    tokio::select! {
                        next = queue.recv() => match next {
                            Some(event) => teller.hold(*event),
                            None => break 'events,
                        },
                        _ = tokio::time::sleep_until(deadline) => break,
                    }
                }
                if teller.flush().await.is_err() {
                    return;
                }
            }
            let _ = teller.flush().await;
        });
        let setup = RelaySetup {
            shared: shared.clone(),
            monitor,
            user: user_name,
            start_dir: (!jailed).then_some(start_dir),
            preamble,
        };
        let reason = relay::run(client, relay_end, setup).await;
        // The last transfer's record must reach the monitor before the process exits.
        shared.close_events();
        let _ = tokio::time::timeout(Duration::from_secs(2), forwarder).await;
        reason
    }
}
