//! Commands, client → libunftp, after login: the session's main loop. Every line goes
//! through one parser; the relay answers what libunftp would get wrong (USER/PASS/AUTH after
//! login, RNFR without rights, FEAT, STAT, PBSZ/PROT, EPSV ALL, …), rewrites what libunftp's
//! parser would refuse, and forwards the rest one command at a time (but during a transfer).
//! It owns the idle and accept timeouts, the line cap, and the final reply of a session that
//! must end.
//!
//! Runs in the worker, as the logged-in user, jailed. Besides [`super::direct`]'s lookups it
//! never resolves a path or touches a file; it never logs a password, and never waits on
//! libunftp without a deadline.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::commands::{abort_transfer, active_mode, modern_verb};
use super::direct::Direct;
use super::engine::ENGINE_TIMEOUT;
use super::replies;
use super::{Engine, SessionView};
use crate::control::command;
use crate::control::line::{Line, LineReader, MAX_LINE};
use crate::logging::Escaped;
use crate::names;
use crate::protocol::ExitReason;
use crate::protocol::event::Event;
use crate::storage::facts::FactSet;
use crate::worker::arguments::{self, DataType, Decision};
use crate::worker::client::Client;
use crate::worker::datatls;
use crate::worker::state::{DataOutcome, ListFlags, MonitorClient, SessionShared};
use crate::worker::status::{self, SessionStatus};
use crate::worker::unanswered::{self, Unanswered};

/// How long the session must be quiet before its idle memory is given back (see `forward`).
const SETTLE: Duration = Duration::from_secs(1);

/// After login: commands client → engine, replies engine → client, line by line.
pub(super) async fn forward(
    client: Client,
    mut client_lines: LineReader,
    engine: Engine,
    shared: Arc<SessionShared>,
    monitor: Arc<MonitorClient>,
    mut view: SessionView,
) -> ExitReason {
    let Engine {
        lines: engine_lines,
        read: engine_read,
        write: mut engine_write,
    } = engine;
    let (mut client_read, client_write) = tokio::io::split(client);
    let (to_client, outbox) = mpsc::channel::<Vec<u8>>(64);
    let protocol_log = shared.config.log_ftp_protocol.then(|| shared.clone());
    let writer = replies::spawn_writer(client_write, outbox, protocol_log);
    let engine_to_client = to_client.clone();
    let reply_shared = shared.clone();
    let owed = Arc::new(Unanswered::default());
    let answered = owed.clone();
    let mut replies = replies::spawn_replies(
        engine_lines,
        engine_read,
        engine_to_client,
        reply_shared,
        answered,
    );
    let say = |text: &str| {
        let mut bytes = text.as_bytes().to_vec();
        bytes.extend_from_slice(b"\r\n");
        bytes
    };
    let config = &shared.config;
    let idle = match config.idle_session_timeout {
        0 => Duration::from_secs(u64::MAX / 4),
        secs => Duration::from_secs(secs),
    };
    let mut replies_done = false;
    // accept_timeout: a transfer command whose data connection never comes (libunftp would
    // wait 15 s and then say nothing). Armed when such a command is forwarded; disarmed when a
    // data connection reaches the storage layer.
    let accept_timeout = Duration::from_secs(config.accept_timeout.max(1));
    let mut awaiting_data: Option<(tokio::time::Instant, usize)> = None;
    // vsftpd starts a session in ASCII; TYPE only changes what STAT reports (no conversion
    // is done: vsftpd's ascii_upload_enable / ascii_download_enable are off by default and
    // rftpd has neither).
    let mut data_type = DataType::Ascii;
    // RFC 2428 §4: after `EPSV ALL` only EPSV may set up a data connection.
    let mut epsv_all = false;
    // A command given to libunftp since it last owed nothing started a transfer: the next
    // ones (STAT, ABOR) must reach it without waiting for the transfer's end.
    let mut transfer_forwarded = false;
    // Once the session has been quiet for SETTLE, the heap's free pages and the stack the
    // last command ran deep in (libunftp's futures) are given back: an idle session keeps
    // only what it uses. This wake-up does not restart the idle clock.
    let mut idle_from = tokio::time::Instant::now();
    let mut settle_at: Option<tokio::time::Instant> = None;
    let mut settled = false;
    let mut direct = Direct::new(&shared);
    let reason = 'session: loop {
        if !settled {
            idle_from = tokio::time::Instant::now();
            settle_at = Some(idle_from + SETTLE);
        }
        settled = false;
        let idle_left = idle.saturating_sub(idle_from.elapsed());
        let data_deadline = awaiting_data.map(|(at, _)| at);
        let next = tokio::select! {
            line = tokio::time::timeout(idle_left, client_lines.next(&mut client_read, MAX_LINE)) => line,
            _ = tokio::time::sleep_until(settle_at.unwrap_or_else(tokio::time::Instant::now)), if settle_at.is_some() => {
                settle_at = None;
                settled = true;
                if shared.transfers.load(Ordering::SeqCst) == 0 {
                    super::give_back_idle_memory();
                }
                continue;
            }
            _ = tokio::time::sleep_until(data_deadline.unwrap_or_else(tokio::time::Instant::now)), if data_deadline.is_some() => {
                if let Some((_, seen)) = awaiting_data.take()
                    && shared.data_connections.load(Ordering::SeqCst) == seen
                {
                    tracing::info!(seconds = accept_timeout.as_secs(), "no data connection in time");
                    const NO_DATA: &str = "425 Failed to establish connection.";
                    if shared.holding_preliminary.load(Ordering::SeqCst) {
                        // The 150 is still held: the 425 takes its place.
                        shared.report_data(DataOutcome::Abandoned(NO_DATA));
                    } else {
                        let _ = to_client.send(say(NO_DATA)).await;
                    }
                }
                continue;
            }
            _ = shared.ending_notified() => {
                if let Some((text, reason)) = shared.take_ending() {
                    let _ = to_client.send(say(&text)).await;
                    break reason;
                }
                continue;
            }
            _ = &mut replies => {
                replies_done = true;
                break ExitReason::Closed;
            }
        };
        let line = match next {
            Err(_) if shared.transfers.load(Ordering::SeqCst) > 0 => continue,
            Err(_) => {
                tracing::info!(seconds = idle.as_secs(), "idle session timed out");
                let _ = to_client.send(say("421 Timeout.")).await;
                break ExitReason::Timeout;
            }
            Ok(Err(_)) | Ok(Ok(Line::Closed)) => break ExitReason::Closed,
            Ok(Ok(Line::TooLong)) => {
                tracing::info!("command line too long; refused");
                if to_client
                    .send(say("500 Command line too long."))
                    .await
                    .is_err()
                {
                    break ExitReason::Closed;
                }
                continue;
            }
            Ok(Ok(Line::Text(line))) => line,
        };
        // SECURITY: one parse decides what every check below sees and what libunftp is given.
        // A name's bytes that are not UTF-8 reach libunftp as stand-ins (`crate::names`).
        let command = match command::parse_names(&line) {
            Ok(c) => c,
            Err(refusal) => {
                tracing::info!(line = %Escaped(&String::from_utf8_lossy(&line)), "command refused");
                if to_client.send(say(refusal.reply())).await.is_err() {
                    break ExitReason::Closed;
                }
                continue;
            }
        };
        if config.log_ftp_protocol {
            // SECURITY: a password never leaves the relay (vsftpd logs `PASS <password>`).
            let logged = if command.verb == "PASS" {
                b"PASS <password>".to_vec()
            } else {
                line.clone()
            };
            shared.report(Event::Protocol {
                input: true,
                line: logged,
            });
        }
        let (verb, line) = match modern_verb(&command.verb) {
            Some(modern) => (modern.to_string(), command.renamed(modern)),
            None => (command.verb.clone(), command.line()),
        };
        let argument = command.arg.as_ref();
        let own_answer = match verb.as_str() {
            "USER" => Some("530 Can't change to another user."),
            "PASS" => Some("230 Already logged in."),
            "AUTH" => Some("503 Already logged in."),
            // RFC 959 gives NOOP no argument; libunftp ends the session on one.
            "NOOP" => Some("200 NOOP ok."),
            // libunftp accepts RNFR without asking the storage backend.
            "RNFR" | "RNTO" if !shared.may_rename() => Some("550 Permission denied."),
            "ALLO" => Some("202 ALLO command ignored."),
            // RFC 7151: HOST only before login.
            "HOST" => Some("503 HOST not allowed after login."),
            // Verbs rftpd (and vsftpd) lack: RFC 959's 502, not libunftp's 500.
            "SMNT" | "REIN" | "CLNT" | "LANG" | "AVBL" | "ADAT" | "MIC" | "CONF" | "ENC" => {
                Some("502 Command not implemented.")
            }
            // vsftpd with port_enable = NO does not know the commands at all.
            "PORT" | "EPRT" if !config.port_enable => Some("500 Unknown command."),
            _ => None,
        };
        if let Some(text) = own_answer {
            if to_client.send(say(text)).await.is_err() {
                break ExitReason::Closed;
            }
            continue;
        }
        // PWD from the mirrored working directory, which is libunftp's own once every
        // command before it is answered (no round trip through libunftp); else libunftp's.
        if verb == "PWD" && owed.none() {
            let mut bytes =
                names::to_wire(&unanswered::pwd_reply(&shared.working_dir())).into_owned();
            bytes.extend_from_slice(b"\r\n");
            if to_client.send(bytes).await.is_err() {
                break ExitReason::Closed;
            }
            continue;
        }
        // SIZE, MDTM, CWD, CDUP from one look at the file system, when libunftp owes nothing.
        if owed.none()
            && let Some(reply) = direct.answer(&shared, &verb, argument)
        {
            if to_client.send(reply).await.is_err() {
                break ExitReason::Closed;
            }
            continue;
        }
        // libunftp ends the session on any argument its parser refuses; `arguments` answers
        // or rewrites every such shape first.
        let decided = match verb.as_str() {
            "TYPE" => {
                if let Ok((kind, _)) = arguments::data_type(argument) {
                    data_type = kind;
                    shared
                        .ascii
                        .store(kind == DataType::Ascii, Ordering::SeqCst);
                }
                arguments::check(&verb, argument)
            }
            // libunftp's own list always has UTF8; this one follows utf8_filesystem and OPTS MLST.
            "FEAT" => Some(Decision::Answer(
                crate::control::features::list(
                    shared.tls.is_some(),
                    config.utf8_filesystem,
                    &shared.mlst_facts().feat_line(),
                )
                .into(),
            )),
            "OPTS"
                if argument
                    .get(..4)
                    .is_some_and(|w| w.eq_ignore_ascii_case("MLST"))
                    && argument[4..].chars().next().is_none_or(|c| c == ' ') =>
            {
                let (facts, reply) = FactSet::select(&argument[4..]);
                shared.set_mlst_facts(facts);
                Some(Decision::Answer(reply.into()))
            }
            "EPSV" => match argument.to_ascii_uppercase().as_str() {
                "ALL" => {
                    epsv_all = true;
                    Some(Decision::Answer("200 EPSV ALL ok.".into()))
                }
                "" => Some(Decision::Forward("EPSV".into())),
                "1" if !shared.client_ip.is_ipv6() => Some(Decision::Forward("EPSV".into())),
                "2" if shared.client_ip.is_ipv6() => Some(Decision::Forward("EPSV".into())),
                _ => Some(Decision::Answer("522 Bad network protocol.".into())),
            },
            "PASV" | "PORT" | "EPRT" if epsv_all => Some(Decision::Answer(
                format!("550 {verb} not allowed after EPSV ALL.").into(),
            )),
            "STAT" if argument.is_empty() => Some(Decision::Answer(
                status::stat(&SessionStatus {
                    client_ip: shared.client_ip,
                    user: &view.user,
                    data_type,
                    idle_timeout: config.idle_session_timeout,
                    control_tls: view.control_tls,
                    data_tls: view.control_tls && view.prot_private,
                })
                .into(),
            )),
            "HELP" => Some(Decision::Answer(status::HELP.into())),
            // With no reply owed the mirrored working directory is current: a `.` or `..`
            // is resolved here, so libunftp's own path never grows. Otherwise it may lag
            // behind a CWD the client pipelined; then only a path climbing above the root is
            // rewritten (to one that does not).
            "CWD" if !argument.is_empty() => {
                let cwd = shared.working_dir();
                if owed.none() {
                    arguments::normalized_cwd(&cwd, argument)
                } else {
                    arguments::clamped_cwd(&cwd, argument)
                }
                .map(|path| Decision::Forward(format!("CWD {path}")))
            }
            _ => arguments::check(&verb, argument),
        };
        let line = match decided {
            Some(Decision::Answer(text)) => {
                if to_client.send(say(&text)).await.is_err() {
                    break ExitReason::Closed;
                }
                continue;
            }
            Some(Decision::Forward(rewritten)) => rewritten,
            // Answered by rftpd's SITE handlers (vsftpd's replies, MLST facts, MFMT).
            None if matches!(verb.as_str(), "SIZE" | "MDTM" | "MFMT" | "MLST") => {
                if argument.is_empty() {
                    format!("SITE {verb}")
                } else {
                    format!("SITE {verb} {argument}")
                }
            }
            // MLSD is listed by the storage backend, with rftpd's facts and the names' bytes,
            // as a flagged LIST (`--`: the rest is the path, as is; libunftp would write MLSD
            // itself, names lossily).
            None if verb == "MLSD" => {
                shared.set_list_flags(ListFlags {
                    mlsd: true,
                    ..ListFlags::default()
                });
                if argument.is_empty() {
                    "LIST".to_string()
                } else {
                    format!("LIST -- {argument}")
                }
            }
            None => line,
        };
        // PBSZ/PROT are answered here: libunftp's data connections are always plain.
        if let Some(data) = shared
            .tls
            .as_deref()
            .filter(|_| matches!(verb.as_str(), "PBSZ" | "PROT"))
        {
            let text = datatls::protection(data, view.control_tls, &line);
            view.prot_private = data.protected();
            if to_client.send(say(text)).await.is_err() {
                break ExitReason::Closed;
            }
            continue;
        }
        if matches!(verb.as_str(), "LIST" | "NLST") {
            shared.set_list_flags(ListFlags::parse(argument));
        }
        if verb == "MFMT" && argument.is_empty() {
            if to_client
                .send(say("501 Syntax error in parameters or arguments."))
                .await
                .is_err()
            {
                break ExitReason::Closed;
            }
            continue;
        }
        if verb == "CDUP" {
            shared.working_dir_up();
        }
        // Active mode: checked here, connected by the monitor, libunftp given a stand-in.
        let line = if matches!(verb.as_str(), "PORT" | "EPRT") {
            match active_mode(&shared, &monitor, &verb, argument).await {
                Ok(engine_line) => {
                    // libunftp's EPSV stands in; its 229 becomes this command's 200.
                    shared.set_active_reply(Some(if verb == "EPRT" {
                        "200 EPRT command successful. Consider using EPSV."
                    } else {
                        "200 PORT command successful. Consider using PASV."
                    }));
                    engine_line
                }
                Err(text) => {
                    if to_client.send(say(text)).await.is_err() {
                        break ExitReason::Closed;
                    }
                    continue;
                }
            }
        } else {
            line
        };
        if matches!(
            verb.as_str(),
            "RETR" | "STOR" | "STOU" | "APPE" | "LIST" | "NLST" | "MLSD"
        ) {
            if let Some(text) = shared
                .tls
                .as_deref()
                .and_then(datatls::refusal_before_transfer)
            {
                if to_client.send(say(text)).await.is_err() {
                    break ExitReason::Closed;
                }
                continue;
            }
            let seen = shared.data_connections.load(Ordering::SeqCst);
            awaiting_data = Some((tokio::time::Instant::now() + accept_timeout, seen));
            shared.clear_data_outcome();
        }
        if verb == "ABOR" && shared.transfers.load(Ordering::SeqCst) > 0 {
            abort_transfer(&shared).await;
        }
        // A CWD the relay answered goes to libunftp first, its reply dropped (see `direct`).
        let catch_up = direct.catch_up().map(|cwd| (cwd, true));
        for (line, silent) in catch_up.into_iter().chain(std::iter::once((line, false))) {
            // One command at a time (see `unanswered`), bounded; during a transfer at once.
            if transfer_forwarded && owed.none() {
                transfer_forwarded = false;
            }
            if !transfer_forwarded && !owed.none() {
                tokio::select! {
                    _ = owed.settled() => {}
                    _ = tokio::time::sleep(ENGINE_TIMEOUT) => {
                        tracing::warn!("the FTP engine owes a reply; forwarding the next command anyway");
                        owed.forget();
                    }
                    _ = shared.ending_notified() => {
                        if let Some((text, reason)) = shared.take_ending() {
                            let _ = to_client.send(say(&text)).await;
                            break 'session reason;
                        }
                    }
                    _ = &mut replies => {
                        replies_done = true;
                        break 'session ExitReason::Closed;
                    }
                }
            }
            if silent {
                owed.forwarded_silently();
            } else {
                transfer_forwarded |= matches!(
                    verb.as_str(),
                    "RETR" | "STOR" | "STOU" | "APPE" | "LIST" | "NLST" | "MLSD"
                );
                owed.forwarded();
            }
            let mut bytes = line.into_bytes();
            bytes.extend_from_slice(b"\r\n");
            match tokio::time::timeout(ENGINE_TIMEOUT, engine_write.write_all(&bytes)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break 'session ExitReason::Closed,
                Err(_) => {
                    tracing::error!("the FTP engine stopped reading commands; ending the session");
                    break 'session ExitReason::Error;
                }
            }
        }
    };
    // Let the engine's last replies (a QUIT's 221) reach the client, then close with
    // close_notify under TLS.
    let _ = engine_write.shutdown().await;
    if !replies_done {
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut replies).await;
        replies.abort();
    }
    drop(to_client);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    reason
}
