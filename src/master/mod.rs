//! The master: binds the control sockets, accepts, admits, and has one session process started
//! per connection; logs how each ended and keeps the counts that span connections. Reloads its
//! config on SIGHUP.
//!
//! It never parses FTP and never reads a byte from a client. The one exception is the PROXY
//! protocol header a listed load balancer sends first (`proxy_protocol`), read in a task of
//! its own by [`proxy`] — see the reasons there. It never forks: sessions are forked
//! by the spawner ([`spawner`]), a single-threaded process the master fork+execs with the
//! validated config in an otherwise empty environment, once at start and again on each reload.

mod admission;
mod endpoint;
mod limits;
mod listen;
pub mod metrics;
mod proxy;
mod reports;
mod spawner;
mod subprocess;
mod systemd;
mod user_sessions;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;
use crate::protocol::spawner::{ProcessEnd, Report};
use crate::protocol::{ExitReason, SessionEnd};
use admission::{admit, through_proxy};
use limits::{Admission, Limits};
use reports::launch_spawner;
use spawner::SpawnerHandle;

/// Environment variable that carries the validated config (TOML) to the spawner.
pub const SESSION_CONFIG_ENV: &str = "RFTPD_SESSION_CONFIG";
/// Environment variable that carries the log filter to a session process.
pub const LOG_ENV: &str = "RFTPD_LOG";
/// Environment variable that carries the user list (`userlist_file`, one name per line).
pub const SESSION_USERLIST_ENV: &str = "RFTPD_SESSION_USERLIST";
/// Environment variable that carries the `banner_file` text.
pub const SESSION_BANNER_ENV: &str = "RFTPD_SESSION_BANNER";

/// Where the running config came from, for reloads.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    Defaults,
}

/// Largest user list or banner handed to a session.
const MAX_HANDOVER: usize = 100_000;

/// A validated configuration plus what the master read for it once (at start or reload), so
/// every session gets exactly what was validated.
#[derive(Clone)]
pub struct Prepared {
    pub config: Config,
    toml: String,
    user_list: String,
    banner: String,
    limits: Limits,
}

impl Prepared {
    /// Read the files the config names (user list, banner, TLS pair) and check them.
    pub fn new(config: Config) -> Result<Prepared, String> {
        let user_list = if config.userlist_enable {
            config
                .load_user_list()
                .map_err(|e| format!("userlist_file {}: {e}", config.userlist_file.display()))?
                .join("\n")
        } else {
            String::new()
        };
        let banner = match &config.banner_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("banner_file {}: {e}", path.display()))?,
            None => String::new(),
        };
        // Both travel to the spawner in its environment (one string must stay below the
        // kernel's 128 KiB per-string limit for exec).
        if user_list.len() > MAX_HANDOVER {
            return Err(format!(
                "userlist_file {}: larger than {MAX_HANDOVER} bytes, which rftpd does not support",
                config.userlist_file.display()
            ));
        }
        if config.ssl_enable {
            crate::tls::load_identity(&config)?;
        }
        Ok(Prepared {
            toml: config.to_toml_string(),
            limits: Limits::from_config(&config),
            config,
            user_list,
            banner,
        })
    }
}

struct State {
    /// Shared, not copied per connection: it holds the user list and banner.
    prepared: RwLock<Arc<Prepared>>,
    source: ConfigSource,
    log_filter: String,
    admission: Mutex<Admission>,
    /// Logged-in sessions per login name (`max_per_user`).
    user_sessions: Mutex<user_sessions::UserSessions>,
    /// The spawner new sessions go to (replaced on reload).
    spawner: Mutex<Option<Arc<SpawnerHandle>>>,
    /// Sessions handed to a spawner and not yet reported ended, by id.
    sessions: Mutex<HashMap<u64, Session>>,
    next_id: AtomicU64,
    /// Connections from a listed load balancer whose PROXY header is still being read.
    pending_headers: AtomicUsize,
    /// `metrics_enable` (at start; a reload does not turn metrics on or off).
    metrics: Option<Arc<metrics::Metrics>>,
}

/// Most PROXY headers read at once; a balancer that opens more waits in its own queue.
const MAX_PENDING_HEADERS: usize = 256;

/// What the master remembers of one session.
struct Session {
    /// The client: the socket's peer, or the address its load balancer's PROXY header named.
    peer: SocketAddr,
    started: Instant,
    pid: u32,
    /// Which spawner started it.
    generation: u64,
    /// The login name it claimed (`max_per_user`), once it has one.
    user: Option<String>,
}

impl State {
    fn prepared(&self) -> Arc<Prepared> {
        self.prepared
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Count something for the metrics, when they are on.
    fn count(&self, what: impl FnOnce(&metrics::Metrics)) {
        if let Some(m) = &self.metrics {
            what(m);
        }
    }

    fn current_spawner(&self) -> Option<Arc<SpawnerHandle>> {
        self.spawner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The spawner to hand a connection to: the current one, or — if it has exited or none
    /// could be started before — a new one for the running configuration.
    fn live_spawner(self: &Arc<Self>) -> Option<Arc<SpawnerHandle>> {
        let mut slot = self.spawner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(handle) = slot.as_ref().filter(|h| !h.has_exited()) {
            return Some(handle.clone());
        }
        match launch_spawner(self, &self.prepared()) {
            Ok(new) => {
                tracing::warn!(pid = new.pid, "started a new session spawner");
                self.count(|m| m.spawner_restarted());
                *slot = Some(new.clone());
                Some(new)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start a session spawner; refusing connections");
                *slot = None;
                None
            }
        }
    }

    /// Stop tracking session `id`; its record, if it was still tracked.
    fn forget(&self, id: u64) -> Option<Session> {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
    }

    /// Give a session's admission slot back and count its failed logins.
    /// Returns true if that got the address banned.
    fn release(&self, peer: SocketAddr, failures: u32) -> bool {
        let limits = self.prepared().limits;
        self.admission
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ended(peer.ip(), failures, &limits, Instant::now())
    }
}

/// Run the server until SIGTERM or SIGINT.
pub fn run(prepared: Prepared, source: ConfigSource, log_filter: String) -> ExitCode {
    let config = prepared.config.clone();
    // Before the runtime and the spawner exist: the cgroup layout they will run in.
    crate::spawner::cgroup::delegate(&config);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listeners = match systemd::passed_listeners() {
            Ok(passed) if !passed.is_empty() => {
                tracing::info!(
                    count = passed.len(),
                    "using the listening sockets passed by systemd"
                );
                passed
            }
            Ok(_) => match listen::bind_all(&config) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!("{e}");
                    return ExitCode::FAILURE;
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "bad sockets from systemd");
                return ExitCode::FAILURE;
            }
        };
        for l in &listeners {
            if let Ok(addr) = l.local_addr() {
                tracing::info!(address = %addr, "listening on {addr}");
            }
        }
        let state = Arc::new(State {
            prepared: RwLock::new(Arc::new(prepared.clone())),
            source,
            log_filter,
            admission: Mutex::new(Admission::default()),
            user_sessions: Mutex::default(),
            spawner: Mutex::new(None),
            sessions: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            pending_headers: AtomicUsize::new(0),
            metrics: config
                .metrics_enable
                .then(|| Arc::new(metrics::Metrics::new())),
        });
        if config.metrics_enable && !endpoint::start(&state, &prepared) {
            return ExitCode::FAILURE;
        }
        match launch_spawner(&state, &prepared) {
            Ok(handle) => *state.spawner.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the session spawner");
                return ExitCode::FAILURE;
            }
        }
        for listener in listeners {
            tokio::spawn(accept_loop(listener, state.clone()));
        }
        if let Err(e) = systemd::notify("READY=1") {
            tracing::warn!(error = %e, "cannot notify systemd");
        }
        wait_for_shutdown(state).await
    })
}

async fn wait_for_shutdown(state: Arc<State>) -> ExitCode {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return ExitCode::FAILURE;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let _ = systemd::notify("RELOADING=1");
                reload(&state).await;
                let _ = systemd::notify("READY=1");
            }
        }
    }
    tracing::info!("shutting down; running sessions continue until they end");
    ExitCode::SUCCESS
}

/// SIGHUP: re-read and validate the config; new sessions get it (from a new spawner), running
/// ones keep theirs.
async fn reload(state: &Arc<State>) {
    let ConfigSource::File(path) = &state.source else {
        tracing::info!("SIGHUP: running on embedded defaults, nothing to reload");
        return;
    };
    // The same checks as start-up, host ones included (a new account or jail may be gone).
    let loaded = Config::load_and_check_host(path)
        .map_err(|errors| {
            errors
                .0
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .and_then(Prepared::new);
    match loaded {
        Ok(new) => {
            for w in new.config.warnings() {
                tracing::warn!("{w}");
            }
            let running = &state.prepared().config;
            if (new.config.metrics_enable, new.config.metrics_listen)
                != (running.metrics_enable, running.metrics_listen)
            {
                tracing::warn!(
                    "metrics_enable and metrics_listen take effect at the next start, not on reload"
                );
            }
            let handle = match launch_spawner(state, &new) {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(error = %e, "reload refused: cannot start a session spawner; keeping the running configuration");
                    return;
                }
            };
            *state.prepared.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
            let old = state
                .spawner
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .replace(handle);
            if let Some(old) = old
                && let Err(e) = old.retire().await
            {
                tracing::warn!(error = %e, "cannot retire the previous session spawner");
            }
            tracing::info!(file = %path.display(), "configuration reloaded; new sessions use it");
        }
        Err(error) => {
            tracing::error!("{error}");
            tracing::error!(file = %path.display(), "reload refused; keeping the running configuration");
        }
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let mut last_sweep = Instant::now();
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let prepared = state.prepared();
                let now = Instant::now();
                if now.duration_since(last_sweep) > Duration::from_secs(60) {
                    let mut admission = state.admission.lock().unwrap_or_else(|p| p.into_inner());
                    admission.sweep(&prepared.limits, now);
                    last_sweep = now;
                }
                let config = &prepared.config;
                let from_proxy = config.proxy_protocol
                    && config
                        .proxy_protocol_from
                        .iter()
                        .any(|n| n.contains(peer.ip()));
                if from_proxy {
                    // SECURITY: the header is read only from a listed proxy, in a task of its
                    // own with a deadline, so no peer can stall this loop; admission waits for
                    // the client address it carries (see `proxy`).
                    through_proxy(stream, peer, &state);
                } else {
                    // Not a listed proxy: nothing is read here; a PROXY header it sends is
                    // refused by the pre-login process as its first command.
                    admit(stream, peer, None, &state).await;
                }
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
