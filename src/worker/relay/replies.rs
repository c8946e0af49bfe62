//! Replies, libunftp → client: the one writer of the client's control connection, the task
//! that reads libunftp's replies, and what it does to them on the way — a `150` held back for
//! the storage backend's word on the transfer (its refusal replaces the `150` and libunftp's
//! error), and the stand-in `229` that becomes a PORT's or EPRT's `200`.
//!
//! Runs in the worker, as the logged-in user, jailed. It never reads a command, never parses
//! a path, and never holds a `150` longer than [`HOLD_PRELIMINARY`].

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::engine::{EngineRead, MAX_ENGINE_LINE};
use crate::control::line::{Line, LineReader};
use crate::names;
use crate::protocol::ExitReason;
use crate::protocol::event::Event;
use crate::worker::arguments;
use crate::worker::client::Client;
use crate::worker::state::{DataOutcome, SessionShared};
use crate::worker::unanswered::{self, Unanswered};

/// Most bytes of queued replies the relay joins into one write to the client.
const WRITE_BATCH: usize = 16 * 1024;
/// Longest a `150` is held back for the storage backend's word on the transfer, once the
/// client's data connection has come (a passive client that has not connected yet gets its
/// `150` at once: it connects after it).
const HOLD_PRELIMINARY: Duration = Duration::from_secs(2);

/// What the reply task knows about the transfer under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pending {
    Nothing,
    /// Refused before its 150 (dropped): this replaces libunftp's error reply.
    Refused(&'static str),
    /// Its 150 went out without the storage backend's word.
    Unheld,
}

/// One reply line from libunftp as the client should see it, or `None` to drop it: a `150`
/// waits for the storage backend's word (its refusal replaces the `150` and libunftp's error
/// after it; its go-ahead gives the `150` vsftpd's words); the `229` of an EPSV standing in
/// for a PORT or EPRT becomes that command's `200`.
pub(super) async fn reply_line(
    shared: &SessionShared,
    line: Vec<u8>,
    pending: &mut Pending,
) -> Option<Vec<u8>> {
    if line.starts_with(b"150 ") {
        // Under PROT P the client makes its TLS handshake only after the 150 (ftplib, curl)
        // and the storage backend decides only after the handshake: nothing to wait for. A
        // refusal then replaces libunftp's error reply (below).
        if shared.tls.as_ref().is_some_and(|t| t.protected()) {
            *pending = Pending::Unheld;
            return Some(line);
        }
        // A word the storage backend has already given is taken as it is (a small transfer's
        // usually is there by now). Else a passive client that has not connected yet waits
        // for this 150 to connect: holding it would only delay that client (by the whole
        // hold). Looking for its connection costs system calls, so only then.
        shared.holding_preliminary.store(true, Ordering::SeqCst);
        let outcome = match shared.take_data_outcome() {
            Some(given) => Some(given),
            None => {
                let hold = if shared.passive_client_absent() {
                    Duration::ZERO
                } else {
                    HOLD_PRELIMINARY
                };
                shared.data_outcome(hold).await
            }
        };
        shared.holding_preliminary.store(false, Ordering::SeqCst);
        return match outcome {
            Some(DataOutcome::Abandoned(text)) => Some(text.as_bytes().to_vec()),
            Some(DataOutcome::Refused(text)) => {
                *pending = Pending::Refused(text);
                None
            }
            Some(DataOutcome::Ready(text)) => Some(text.into_bytes()),
            None => {
                *pending = Pending::Unheld;
                Some(line)
            }
        };
    }
    let final_reply =
        line.len() >= 4 && line[..3].iter().all(u8::is_ascii_digit) && line[3] == b' ';
    let failed = matches!(line.first(), Some(b'4' | b'5'));
    match std::mem::replace(pending, Pending::Nothing) {
        Pending::Refused(text) if failed => return Some(text.as_bytes().to_vec()),
        // The 150 went out before the storage backend's word: a refusal it gave since then
        // replaces libunftp's error (a protected connection's failed handshake).
        Pending::Unheld if failed => {
            if let Some(DataOutcome::Refused(text)) = shared.take_data_outcome() {
                return Some(text.as_bytes().to_vec());
            }
        }
        Pending::Unheld if !final_reply => *pending = Pending::Unheld,
        _ => {}
    }
    if final_reply && let Some(text) = shared.take_active_reply() {
        return Some(if line.starts_with(b"229 ") {
            text.as_bytes().to_vec()
        } else {
            b"425 Failed to establish connection.".to_vec()
        });
    }
    Some(line)
}

/// One writer, so lines from the engine and the relay's own replies never interleave.
pub(super) fn spawn_writer(
    mut client_write: WriteHalf<Client>,
    mut outbox: mpsc::Receiver<Vec<u8>>,
    protocol_log: Option<Arc<SessionShared>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(mut bytes) = outbox.recv().await {
            // Replies queued meanwhile (a small transfer's 150 and 226) go out in one write.
            while bytes.len() < WRITE_BATCH {
                match outbox.try_recv() {
                    Ok(more) => bytes.extend_from_slice(&more),
                    Err(_) => break,
                }
            }
            if let Some(shared) = &protocol_log {
                for reply in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let reply = reply.strip_suffix(b"\r").unwrap_or(reply);
                    shared.report(Event::Protocol {
                        input: false,
                        line: reply.to_vec(),
                    });
                }
            }
            if client_write.write_all(&bytes).await.is_err() || client_write.flush().await.is_err()
            {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    })
}

/// Reads libunftp's replies and queues them for the client, marking each final one answered.
pub(super) fn spawn_replies(
    mut engine_lines: LineReader,
    mut engine_read: EngineRead,
    engine_to_client: mpsc::Sender<Vec<u8>>,
    reply_shared: Arc<SessionShared>,
    answered: Arc<Unanswered>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // A transfer the storage backend refused before a byte moved: its reply replaces
        // libunftp's error, which follows the (dropped) 150.
        let mut pending = Pending::Nothing;
        while let Ok(Line::Text(line)) = engine_lines.next(&mut engine_read, MAX_ENGINE_LINE).await
        {
            // The reply to a CWD the relay gave libunftp to catch up: not the client's. Should
            // libunftp refuse it, its relative paths would no longer be the client's: the
            // session ends rather than act on the wrong directory.
            if answered.swallows(&line) {
                if unanswered::is_final(&line) && !line.starts_with(b"2") {
                    tracing::error!(
                        "libunftp refused the working directory the relay entered; ending the session"
                    );
                    reply_shared.end_session(
                        "421 Service not available, closing control connection.",
                        ExitReason::Error,
                    );
                }
                continue;
            }
            let ends_reply = unanswered::is_final(&line);
            let line = match reply_line(&reply_shared, line, &mut pending).await {
                Some(line) => line,
                None => continue,
            };
            let line = arguments::engine_line(&line).unwrap_or(line);
            // Names in replies (PWD, MKD, MLST, STAT path) go back as their bytes.
            let mut bytes = match names::to_wire(&line) {
                Cow::Borrowed(_) => line,
                Cow::Owned(raw) => raw,
            };
            bytes.extend_from_slice(b"\r\n");
            if engine_to_client.send(bytes).await.is_err() {
                break;
            }
            if ends_reply {
                answered.answered();
            }
        }
    })
}
