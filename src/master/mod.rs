//! The master: binds the control sockets, accepts, and starts one session process per
//! connection; reaps them and logs how each ended. Reloads its config on SIGHUP.
//!
//! It never parses FTP and never reads a byte from a client. Sessions are started by
//! fork+exec of this same binary (`rftpd session`) with the client socket as fd 0, an empty
//! environment except the validated config, and nothing else inherited.

mod listen;

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;
use crate::session::ExitReason;

/// Environment variable that carries the validated config (TOML) to a session process.
pub const SESSION_CONFIG_ENV: &str = "RFTPD_SESSION_CONFIG";
/// Environment variable that carries the log filter to a session process.
pub const LOG_ENV: &str = "RFTPD_LOG";

/// Where the running config came from, for reloads.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    Defaults,
}

struct State {
    config: RwLock<(Config, String)>,
    source: ConfigSource,
    log_filter: String,
}

impl State {
    fn config_toml(&self) -> String {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }
}

/// Run the server until SIGTERM or SIGINT.
pub fn run(config: Config, source: ConfigSource, log_filter: String) -> ExitCode {
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
        let listeners = match listen::bind_all(&config) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        for l in &listeners {
            if let Ok(addr) = l.local_addr() {
                tracing::info!(address = %addr, "listening on {addr}");
            }
        }
        let toml = config.to_toml_string();
        let state = Arc::new(State {
            config: RwLock::new((config, toml)),
            source,
            log_filter,
        });
        for listener in listeners {
            tokio::spawn(accept_loop(listener, state.clone()));
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
            _ = hup.recv() => reload(&state),
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
    match Config::load(path) {
        Ok(new) => {
            let toml = new.to_toml_string();
            *state.config.write().unwrap_or_else(|p| p.into_inner()) = (new, toml);
            tracing::info!(file = %path.display(), "configuration reloaded; new sessions use it");
        }
        Err(errors) => {
            for e in &errors.0 {
                tracing::error!("{e}");
            }
            tracing::error!(file = %path.display(), "reload refused; keeping the running configuration");
        }
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => spawn_session(stream, &state),
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// fork+exec `rftpd session` with the client socket as fd 0; reap it in a task.
fn spawn_session(stream: TcpStream, state: &State) {
    let peer = stream.peer_addr().ok();
    let std_stream = match stream
        .into_std()
        .and_then(|s| s.set_nonblocking(false).map(|_| s))
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot hand over a connection");
            return;
        }
    };
    let mut command = std::process::Command::new("/proc/self/exe");
    command
        .arg0("rftpd")
        .arg("session")
        .env_clear()
        .env(SESSION_CONFIG_ENV, state.config_toml())
        .env(LOG_ENV, &state.log_filter)
        .stdin(Stdio::from(OwnedFd::from(std_stream)))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let mut child = match tokio::process::Command::from(command).spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a session process");
            return;
        }
    };
    let pid = child.id().unwrap_or(0);
    let client = peer.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
    tracing::debug!(client = %client, pid, "session started");
    tokio::spawn(async move {
        let status = child.wait().await;
        let reason = match status.as_ref().ok().and_then(|s| s.code()) {
            Some(code) => ExitReason::from_code(code)
                .map(ExitReason::describe)
                .unwrap_or("error"),
            None => "killed",
        };
        tracing::info!(client = %client, pid, duration_ms = started.elapsed().as_millis() as u64, reason, "session ended");
    });
}
