//! The worker's relay: between the link to the pre-login process (the client's commands, as
//! they came) and libunftp's in-process connection.
//!
//! It first logs libunftp in — with the user's name and a one-time token, for the login the
//! monitor already accepted — replays the `PBSZ`/`PROT` given before login, and says `230`.
//! Then it forwards commands and replies line by line, answering the few commands libunftp
//! would get wrong itself (USER/PASS/AUTH after login, RNFR without rights, PORT/EPRT, which
//! are checked here and connected by the monitor), and owns the idle, data and accept
//! timeouts, the line cap, and every final reply of a session that must end. It gives
//! libunftp one command at a time but during a transfer, and answers `PWD` itself (from the
//! mirrored working directory, when libunftp owes no reply): see [`crate::worker::unanswered`].
//! When libunftp owes no reply it also answers `SIZE`, `MDTM`, `CWD` and `CDUP` from one
//! look at the file system through the storage backend's gate ([`direct`]).
//!
//! Besides [`direct`]'s lookups it never resolves a path and never touches a file. Every line
//! goes through one parser
//! (`crate::control::command`) and libunftp is given the line rebuilt from it. Every wait on
//! libunftp has a deadline.
//! # Layout
//! - [`engine`]: reading libunftp's replies, one command's round trip (bounded).
//! - [`replies`]: libunftp → client: the one writer, the held `150`, the stand-in `229`.
//! - [`commands`]: what the relay checks itself (X-verbs, PORT/EPRT, ABOR during a transfer).
//! - [`direct`]: `SIZE`, `MDTM`, `CWD`, `CDUP` answered on the relay's turn.
//! - [`forward`]: the main loop after login, client → libunftp.

mod commands;
mod direct;
mod engine;
mod forward;
mod replies;

use std::io;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;

use crate::control::line::LineReader;
use crate::logging::Escaped;
use crate::protocol::ExitReason;
use crate::protocol::link::Preamble;
pub use crate::worker::client::Client;
use crate::worker::state::{MonitorClient, SessionShared};
use engine::{ENGINE_TIMEOUT, EngineRead, EngineWrite, engine_round_trip, read_engine_reply};
use forward::forward;

/// What the relay needs besides the two connections.
pub struct RelaySetup {
    pub shared: Arc<SessionShared>,
    /// For active mode's connections (only the relay and the binder hold it).
    pub monitor: Arc<MonitorClient>,
    /// The account libunftp is logged in as.
    pub user: String,
    /// Where a user who is not jailed starts (libunftp starts every session at `/`).
    pub start_dir: Option<String>,
    pub preamble: Preamble,
}

/// Log libunftp in and serve the session until it ends; returns why it ended.
pub async fn run(link: Client, engine: tokio::net::TcpStream, setup: RelaySetup) -> ExitReason {
    let (mut engine_read, mut engine_write) = engine.into_split();
    let mut engine_lines = LineReader::default();
    let shared = setup.shared.clone();
    let mut setup = setup;
    let mut link = link;
    let greeting = tokio::time::timeout(
        ENGINE_TIMEOUT,
        read_engine_reply(&mut engine_lines, &mut engine_read),
    )
    .await;
    if !matches!(greeting, Ok(Ok(_))) {
        tracing::error!("the FTP engine did not greet");
        return ExitReason::Error;
    }
    let login = [
        (format!("USER {}", setup.user), 331),
        (format!("PASS {}", shared.login_token), 230),
    ];
    for (line, expected) in login {
        match engine_round_trip(
            &line,
            &mut engine_lines,
            &mut engine_read,
            &mut engine_write,
        )
        .await
        {
            Ok(answer) if answer.code == expected => {}
            Ok(answer) => {
                if let Some((text, reason)) = shared.take_ending() {
                    let _ = link_write(&mut link, &text).await;
                    return reason;
                }
                tracing::error!(code = answer.code, "FTP engine refused the granted login");
                return ExitReason::Error;
            }
            Err(e) => {
                tracing::error!(error = %e, "FTP engine login failed");
                return ExitReason::Error;
            }
        }
    }
    let mut replay: Vec<String> = Vec::new();
    if let Some(dir) = &setup.start_dir {
        replay.push(format!("CWD {dir}"));
    }
    // PBSZ/PROT given before login are not replayed: libunftp never does TLS (the session's
    // `datatls` starts with the protection the pre-login process accepted).
    for line in replay {
        match engine_round_trip(
            &line,
            &mut engine_lines,
            &mut engine_read,
            &mut engine_write,
        )
        .await
        {
            Ok(answer) if (200..300).contains(&answer.code) => {}
            Ok(answer) => {
                tracing::warn!(command = %Escaped(&line), code = answer.code, "FTP engine refused a pre-login setting")
            }
            Err(e) => {
                tracing::error!(error = %e, "FTP engine gone during login");
                return ExitReason::Error;
            }
        }
    }
    if link_write(&mut link, "230 Login successful.")
        .await
        .is_err()
    {
        return ExitReason::Closed;
    }
    // The session is set up and now mostly idle: give back what the setup freed (the
    // runtime's and libunftp's start-up temporaries) and the stack it ran deep in.
    give_back_idle_memory();
    let pending = std::mem::take(&mut setup.preamble.pending);
    let engine = Engine {
        lines: engine_lines,
        read: engine_read,
        write: engine_write,
    };
    let view = SessionView {
        user: setup.user,
        control_tls: setup.preamble.control_tls,
        prot_private: setup.preamble.prot_private.unwrap_or(false),
    };
    forward(
        link,
        LineReader::seeded(pending),
        engine,
        shared,
        setup.monitor,
        view,
    )
    .await
}

/// What the relay knows of the session for `STAT`.
pub(super) struct SessionView {
    pub(super) user: String,
    pub(super) control_tls: bool,
    /// The last `PROT` libunftp was given was `P`.
    pub(super) prot_private: bool,
}

/// libunftp's side of the relay.
pub(super) struct Engine {
    pub(super) lines: LineReader,
    pub(super) read: EngineRead,
    pub(super) write: EngineWrite,
}

async fn link_write(link: &mut Client, text: &str) -> io::Result<()> {
    link.write_all(text.as_bytes()).await?;
    link.write_all(b"\r\n").await?;
    link.flush().await
}

/// Give back the heap's free pages and the stack below a shallow frame, once this session is
/// idle. Done in a task of its own: the runtime polls a spawned task a few frames below
/// `block_on`, while the relay runs inside the session's future, several pages of stack
/// deeper, and the stack between the two would stay resident in every idle session.
fn give_back_idle_memory() {
    tokio::spawn(async {
        crate::sys::release_free_heap();
        crate::sys::discard_stack_below_caller();
    });
}
