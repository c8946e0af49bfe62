//! The master: binds the control sockets, accepts, and starts one session process per
//! connection; reaps them and logs how each ended. Reloads its config on SIGHUP.
//!
//! It never parses FTP and never reads a byte from a client. Sessions are started by
//! fork+exec of this same binary (`rftpd session`) with the client socket as fd 0, an empty
//! environment except the validated config, and nothing else inherited.

mod limits;
mod listen;
mod systemd;

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;
use crate::session::{ExitReason, SessionEnd};
use limits::{Admission, Limits};

/// Environment variable that carries the validated config (TOML) to a session process.
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
        // Both travel to each session in its environment (one string must stay below the
        // kernel's 128 KiB per-string limit for exec).
        if user_list.len() > MAX_HANDOVER {
            return Err(format!(
                "userlist_file {}: larger than {MAX_HANDOVER} bytes, which rftpd does not support",
                config.userlist_file.display()
            ));
        }
        if config.ssl_enable {
            crate::session::tls::load_identity(&config)?;
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
    prepared: RwLock<Prepared>,
    source: ConfigSource,
    log_filter: String,
    admission: Mutex<Admission>,
}

impl State {
    fn prepared(&self) -> Prepared {
        self.prepared
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Run the server until SIGTERM or SIGINT.
pub fn run(prepared: Prepared, source: ConfigSource, log_filter: String) -> ExitCode {
    let config = prepared.config.clone();
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
            prepared: RwLock::new(prepared),
            source,
            log_filter,
            admission: Mutex::new(Admission::default()),
        });
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
                reload(&state);
                let _ = systemd::notify("READY=1");
            }
        }
    }
    tracing::info!("shutting down; running sessions continue until they end");
    ExitCode::SUCCESS
}

/// SIGHUP: re-read and validate the config; new sessions get it, running ones keep theirs.
fn reload(state: &State) {
    let ConfigSource::File(path) = &state.source else {
        tracing::info!("SIGHUP: running on embedded defaults, nothing to reload");
        return;
    };
    let loaded = Config::load(path)
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
            *state.prepared.write().unwrap_or_else(|p| p.into_inner()) = new;
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
                let admitted = {
                    let mut admission = state.admission.lock().unwrap_or_else(|p| p.into_inner());
                    if now.duration_since(last_sweep) > Duration::from_secs(60) {
                        admission.sweep(&prepared.limits, now);
                        last_sweep = now;
                    }
                    admission.admit(peer.ip(), &prepared.limits, now)
                };
                match admitted {
                    Ok(()) => spawn_session(stream, peer, &prepared, state.clone()),
                    Err(refusal) => {
                        tracing::warn!(client = %peer.ip(), reason = refusal.describe(), "connection refused");
                        // Best effort: a client that does not read its 421 just sees the close.
                        let _ = stream.try_write(refusal.reply().as_bytes());
                    }
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

/// fork+exec `rftpd session` with the client socket as fd 0; reap it in a task.
fn spawn_session(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    prepared: &Prepared,
    state: Arc<State>,
) {
    let release = |state: &State| {
        let limits = state.prepared().limits;
        state
            .admission
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ended(peer.ip(), 0, &limits, Instant::now());
    };
    let std_stream = match stream
        .into_std()
        .and_then(|s| s.set_nonblocking(false).map(|_| s))
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot hand over a connection");
            release(&state);
            return;
        }
    };
    let mut command = std::process::Command::new("/proc/self/exe");
    command
        .arg0("rftpd")
        .arg("session")
        .env_clear()
        .env(SESSION_CONFIG_ENV, &prepared.toml)
        .env(SESSION_USERLIST_ENV, &prepared.user_list)
        .env(SESSION_BANNER_ENV, &prepared.banner)
        .env(LOG_ENV, &state.log_filter)
        .stdin(Stdio::from(OwnedFd::from(std_stream)))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let mut child = match tokio::process::Command::from(command).spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a session process");
            release(&state);
            return;
        }
    };
    let pid = child.id().unwrap_or(0);
    tracing::debug!(client = %peer, pid, "session started");
    tokio::spawn(async move {
        let status = child.wait().await;
        let end = status
            .as_ref()
            .ok()
            .and_then(|s| s.code())
            .map(SessionEnd::from_code);
        let (reason, failures) = match end {
            Some(end) => (
                end.reason.map(ExitReason::describe).unwrap_or("error"),
                end.failed_logins,
            ),
            None => ("killed", 0),
        };
        let limits = state.prepared().limits;
        let banned = state
            .admission
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ended(peer.ip(), failures, &limits, Instant::now());
        tracing::info!(
            client = %peer,
            pid,
            duration_ms = started.elapsed().as_millis() as u64,
            failed_logins = failures,
            reason,
            "session ended"
        );
        if banned {
            tracing::warn!(client = %peer.ip(), ban_secs = limits.ban_time.as_secs(), "address banned after repeated failed logins");
        }
    });
}
