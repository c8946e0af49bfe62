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
//!
//! It never parses a path and never touches a file. Every line goes through one parser
//! (`crate::control::command`) and libunftp is given the line rebuilt from it. Every wait on
//! libunftp has a deadline.

use std::borrow::Cow;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::control::command;
use crate::control::line::{Line, LineReader, MAX_LINE};
use crate::control::port;
use crate::logging::Escaped;
use crate::names;
use crate::protocol::ExitReason;
use crate::protocol::event::Event;
use crate::protocol::link::Preamble;
use crate::storage::facts::FactSet;
use crate::worker::active;
use crate::worker::arguments::{self, DataType, Decision};
pub use crate::worker::client::Client;
use crate::worker::datatls;
use crate::worker::state::{DataOutcome, ListFlags, MonitorClient, SessionShared};
use crate::worker::status::{self, SessionStatus};
use crate::worker::unanswered::{self, Unanswered};

/// Longest reply line accepted from libunftp.
const MAX_ENGINE_LINE: usize = 1 << 20;
/// Longest wait for libunftp to answer one command of the login, or to take a command.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(20);
/// Most bytes of queued replies the relay joins into one write to the client.
const WRITE_BATCH: usize = 16 * 1024;
/// How long the session must be quiet before its idle memory is given back (see `forward`).
const SETTLE: Duration = Duration::from_secs(1);
/// Longest a `150` is held back for the storage backend's word on the transfer, once the
/// client's data connection has come (a passive client that has not connected yet gets its
/// `150` at once: it connects after it).
const HOLD_PRELIMINARY: Duration = Duration::from_secs(2);

type EngineRead = tokio::net::tcp::OwnedReadHalf;
type EngineWrite = tokio::net::tcp::OwnedWriteHalf;

/// RFC 775's X-verbs (XCUP, XCWD, XPWD, XMKD, XRMD), which vsftpd accepts and libunftp does
/// not: the verbs libunftp knows.
fn modern_verb(verb: &str) -> Option<&'static str> {
    Some(match verb {
        "XCUP" => "CDUP",
        "XCWD" => "CWD",
        "XPWD" => "PWD",
        "XMKD" => "MKD",
        "XRMD" => "RMD",
        _ => return None,
    })
}

/// A PORT or EPRT: the line for libunftp, or the reply to send instead (vsftpd's words).
async fn active_mode(
    shared: &Arc<SessionShared>,
    monitor: &MonitorClient,
    verb: &str,
    arg: &str,
) -> Result<String, &'static str> {
    let config = &shared.config;
    let eprt = verb == "EPRT";
    let target = if eprt {
        port::parse_eprt(arg).ok_or("500 Bad EPRT command.")?
    } else {
        port::parse_port(arg).ok_or("500 Illegal PORT command.")?
    };
    if !port::allowed(target, shared.client_ip, config.port_promiscuous) {
        tracing::warn!(address = %target, "PORT/EPRT to another host or a privileged port refused (port_promiscuous = false)");
        return Err(if eprt {
            "500 Illegal EPRT command."
        } else {
            "500 Illegal PORT command."
        });
    }
    // No passive listener is in play any more (see `SessionShared::passive_client_absent`).
    *shared
        .passive_address
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = None;
    active::prepare(shared, monitor, target)
        .await
        .ok_or("425 Failed to establish connection.")
}

/// What the reply task knows about the transfer under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
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
async fn reply_line(
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
        // A passive client that has not connected by now waits for this 150 to connect:
        // holding it would only delay that client (by the whole hold). A word the storage
        // backend has already given still counts.
        let hold = if shared.passive_client_absent() {
            Duration::ZERO
        } else {
            HOLD_PRELIMINARY
        };
        shared.holding_preliminary.store(true, Ordering::SeqCst);
        let outcome = shared.data_outcome(hold).await;
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

/// A complete reply from libunftp: all its lines, and its code.
struct EngineReply {
    code: u16,
    #[cfg_attr(not(test), allow(dead_code))]
    text: String,
}

async fn read_engine_reply<R: AsyncRead + Unpin>(
    lines: &mut LineReader,
    r: &mut R,
) -> io::Result<EngineReply> {
    let mut text = String::new();
    loop {
        let line = match lines.next(r, MAX_ENGINE_LINE).await? {
            Line::Text(l) => String::from_utf8_lossy(&l).into_owned(),
            Line::Closed => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "FTP engine closed",
                ));
            }
            Line::TooLong => return Err(io::Error::other("FTP engine reply too long")),
        };
        text.push_str(&line);
        text.push_str("\r\n");
        let b = line.as_bytes();
        if b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' ' {
            let code = line[..3].parse().unwrap_or(0);
            return Ok(EngineReply { code, text });
        }
        if b.len() == 3 && b.iter().all(u8::is_ascii_digit) {
            return Ok(EngineReply {
                code: line.parse().unwrap_or(0),
                text,
            });
        }
    }
}

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

async fn engine_round_trip(
    line: &str,
    engine_lines: &mut LineReader,
    engine_read: &mut EngineRead,
    engine_write: &mut EngineWrite,
) -> io::Result<EngineReply> {
    let exchange = async {
        engine_write.write_all(line.as_bytes()).await?;
        engine_write.write_all(b"\r\n").await?;
        read_engine_reply(engine_lines, engine_read).await
    };
    tokio::time::timeout(ENGINE_TIMEOUT, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the FTP engine did not answer"))?
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
    crate::sys::release_free_heap();
    crate::sys::discard_stack_below_caller();
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
struct SessionView {
    user: String,
    control_tls: bool,
    /// The last `PROT` libunftp was given was `P`.
    prot_private: bool,
}

/// libunftp's side of the relay.
struct Engine {
    lines: LineReader,
    read: EngineRead,
    write: EngineWrite,
}

/// `ABOR` during a transfer (libunftp would only answer it and let the transfer run): the
/// storage backend ends the transfer, and libunftp gets the `ABOR` once it has, so the
/// transfer's `426` comes before the `ABOR`'s `226`, as with vsftpd. Bounded: at most 5 s.
async fn abort_transfer(shared: &SessionShared) {
    shared.request_abort();
    for _ in 0..500 {
        if shared.transfers.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The engine learns of the transfer's end over its own channel; give it that moment.
    tokio::time::sleep(Duration::from_millis(20)).await;
}

async fn link_write(link: &mut Client, text: &str) -> io::Result<()> {
    link.write_all(text.as_bytes()).await?;
    link.write_all(b"\r\n").await?;
    link.flush().await
}

/// After login: commands client → engine, replies engine → client, line by line.
async fn forward(
    client: Client,
    mut client_lines: LineReader,
    engine: Engine,
    shared: Arc<SessionShared>,
    monitor: Arc<MonitorClient>,
    mut view: SessionView,
) -> ExitReason {
    let Engine {
        lines: mut engine_lines,
        read: mut engine_read,
        write: mut engine_write,
    } = engine;
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (to_client, mut outbox) = mpsc::channel::<Vec<u8>>(64);
    // One writer, so lines from the engine and the relay's own replies never interleave.
    let protocol_log = shared.config.log_ftp_protocol.then(|| shared.clone());
    let writer = tokio::spawn(async move {
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
    });
    let engine_to_client = to_client.clone();
    let reply_shared = shared.clone();
    let owed = Arc::new(Unanswered::default());
    let answered = owed.clone();
    let mut replies = tokio::spawn(async move {
        // A transfer the storage backend refused before a byte moved: its reply replaces
        // libunftp's error, which follows the (dropped) 150.
        let mut pending = Pending::Nothing;
        while let Ok(Line::Text(line)) = engine_lines.next(&mut engine_read, MAX_ENGINE_LINE).await
        {
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
    });
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
    let reason = loop {
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
                    crate::sys::release_free_heap();
                    crate::sys::discard_stack_below_caller();
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
                        break reason;
                    }
                }
                _ = &mut replies => {
                    replies_done = true;
                    break ExitReason::Closed;
                }
            }
        }
        transfer_forwarded |= matches!(
            verb.as_str(),
            "RETR" | "STOR" | "STOU" | "APPE" | "LIST" | "NLST" | "MLSD"
        );
        let mut bytes = line.into_bytes();
        bytes.extend_from_slice(b"\r\n");
        owed.forwarded();
        match tokio::time::timeout(ENGINE_TIMEOUT, engine_write.write_all(&bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break ExitReason::Closed,
            Err(_) => {
                tracing::error!("the FTP engine stopped reading commands; ending the session");
                break ExitReason::Error;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_verbs_become_the_verbs_libunftp_knows() {
        assert_eq!(modern_verb("XPWD"), Some("PWD"));
        assert_eq!(modern_verb("XCUP"), Some("CDUP"));
        assert_eq!(modern_verb("XCWD"), Some("CWD"));
        assert_eq!(modern_verb("XMKD"), Some("MKD"));
        assert_eq!(modern_verb("XRMD"), Some("RMD"));
        assert_eq!(modern_verb("RETR"), None);
        assert_eq!(
            command::parse(b"xcwd sub dir").unwrap().renamed("CWD"),
            "CWD sub dir"
        );
    }

    #[tokio::test]
    async fn engine_replies_are_read_whole_including_multi_line() {
        let mut input: &[u8] =
            b"211-Extensions supported:\r\n UTF8\r\n211 END\r\n230 User logged in\r\n";
        let mut lines = LineReader::default();
        let feat = read_engine_reply(&mut lines, &mut input).await.unwrap();
        assert_eq!(feat.code, 211);
        assert!(feat.text.contains("UTF8"));
        assert_eq!(
            read_engine_reply(&mut lines, &mut input)
                .await
                .unwrap()
                .code,
            230
        );
    }
}
