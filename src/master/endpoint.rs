//! The master's side of the metrics endpoint (`metrics_enable`): binds `metrics_listen`,
//! fork+execs `rftpd metrics-endpoint` (which sandboxes itself as `nopriv_user`, see
//! `crate::metrics`), hands it the listening socket, and answers each of its scrape requests
//! with the current text. Starts it again if it ends, a bounded number of times in a row.
//!
//! SECURITY: the master reads no HTTP. From the endpoint it accepts exactly one message, the
//! one-byte scrape request; anything else (another message, a descriptor) is a compromised or
//! broken endpoint, which is killed.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{LOG_ENV, Prepared, SESSION_CONFIG_ENV, State};
use crate::protocol::metrics::{LISTENER, MAX_TEXT, is_scrape};
use crate::sys;

/// The current text, made by the master on each request.
type TextSource = Arc<dyn Fn() -> String + Send + Sync>;

/// Starts that end within [`QUICK_END`] in a row before the master gives up on the endpoint.
const MAX_QUICK_ENDS: u32 = 5;
const QUICK_END: Duration = Duration::from_secs(10);
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Bind `metrics_listen` and start the endpoint process (`metrics_enable`). False: cannot bind
/// (logged), and the server does not start.
pub(super) fn start(state: &Arc<State>, prepared: &Prepared) -> bool {
    let Some(metrics) = state.metrics.clone() else {
        return true;
    };
    let address = prepared.config.metrics_listen;
    let listener = match bind(address) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "metrics_listen {address}: cannot listen");
            return false;
        }
    };
    if let Ok(bound) = listener.local_addr() {
        tracing::info!(address = %bound, "metrics on http://{bound}/metrics");
    }
    let weak = Arc::downgrade(state);
    let text: TextSource = Arc::new(move || {
        let open = weak.upgrade().map_or(0, |s| {
            s.sessions.lock().unwrap_or_else(|p| p.into_inner()).len()
        });
        metrics.encode(open)
    });
    supervise(
        listener,
        prepared.toml.clone(),
        state.log_filter.clone(),
        text,
    );
    true
}

/// Bind `address` (as root: any port) for the endpoint.
fn bind(address: std::net::SocketAddr) -> io::Result<std::net::TcpListener> {
    std::net::TcpListener::bind(address)
}

/// Run the endpoint process for as long as the master runs (a task on its runtime).
fn supervise(
    listener: std::net::TcpListener,
    config_toml: String,
    log_filter: String,
    text: TextSource,
) {
    let listener = OwnedFd::from(listener);
    tokio::spawn(async move {
        let mut quick_ends = 0;
        loop {
            let started = Instant::now();
            match run_once(&listener, &config_toml, &log_filter, &text).await {
                Ok(why) => tracing::warn!(why, "the metrics endpoint ended"),
                Err(e) => tracing::error!(error = %e, "the metrics endpoint failed"),
            }
            if started.elapsed() < QUICK_END {
                quick_ends += 1;
            } else {
                quick_ends = 0;
            }
            if quick_ends >= MAX_QUICK_ENDS {
                tracing::error!(
                    "the metrics endpoint keeps ending; not starting it again (rftpd serves on)"
                );
                return;
            }
            tokio::time::sleep(RESTART_DELAY).await;
        }
    });
}

/// One endpoint process, from its start to its end. `Ok`: why it ended.
async fn run_once(
    listener: &OwnedFd,
    config_toml: &str,
    log_filter: &str,
    text: &TextSource,
) -> io::Result<&'static str> {
    let super::subprocess::Launch {
        mut command,
        master_end,
    } = super::subprocess::prepare(
        "metrics-endpoint",
        &[(SESSION_CONFIG_ENV, config_toml), (LOG_ENV, log_filter)],
    )?;
    let mut child = command.spawn()?;
    tracing::info!(pid = child.id().unwrap_or(0), "metrics endpoint started");
    let channel = sys::async_fd(master_end)?;
    let why = serve(&channel, listener, text).await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    why
}

async fn serve(
    channel: &tokio::io::unix::AsyncFd<OwnedFd>,
    listener: &OwnedFd,
    text: &TextSource,
) -> io::Result<&'static str> {
    sys::send_message_async(channel, LISTENER, Some(listener.as_fd())).await?;
    let mut buf = [0u8; 2];
    loop {
        match sys::recv_message_async(channel, &mut buf).await {
            Ok((0, _)) => return Ok("it closed its channel"),
            // SECURITY: a descriptor or any message but the scrape request: killed.
            Ok((_, Some(_))) => return Ok("it sent a descriptor; killed"),
            Ok((len, None)) if !is_scrape(&buf[..len]) => {
                return Ok("it sent something other than a scrape request; killed");
            }
            Ok(_) => {}
            Err(e) => return Err(e),
        }
        let mut body = text();
        if body.len() > MAX_TEXT {
            tracing::warn!(len = body.len(), "metrics text too long; cut");
            let mut cut = MAX_TEXT;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
        }
        sys::send_message_async(channel, body.as_bytes(), None).await?;
    }
}
