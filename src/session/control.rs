//! The control-connection relay: between the client and libunftp, inside the worker.
//!
//! libunftp serves the session through an in-process TCP connection (see `netns`); this relay
//! holds the client's real connection. It owns what vsftpd users see before and around the
//! FTP engine: the greeting, `AUTH TLS` (the control channel's TLS ends here), `USER`/`PASS`
//! with vsftpd's replies (the monitor decides; libunftp is then logged in with a one-time
//! token), the start directory of users who are not jailed, the login, idle and data timeouts,
//! the line-length cap, and every final reply of a session that must end — written inside TLS
//! when TLS is on. After login it forwards commands and replies line by line, answering the few
//! commands libunftp would get wrong itself.
//!
//! It never parses a path, never touches a file, and never trusts a line longer than
//! `MAX_LINE`. Passwords pass through it only on their way to the monitor and are never logged.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::session::protocol::{MAX_PASSWORD, MAX_USER, Reply, Request};
use crate::session::worker::{ListFlags, SessionShared};
use crate::session::{ExitReason, active};

/// Longest command line accepted from a client (vsftpd: 4 KiB).
pub const MAX_LINE: usize = 4096;
/// Longest reply line accepted from libunftp.
const MAX_ENGINE_LINE: usize = 1 << 20;

/// The client's side of the connection, plain or TLS.
enum Client {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// Only while the plain stream is being wrapped in TLS.
    Upgrading,
}

fn upgrading() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "control connection is changing to TLS",
    )
}

impl AsyncRead for Client {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Client::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Client::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Client::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }
}

impl AsyncWrite for Client {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Client::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Client::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Client::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Client::Plain(s) => Pin::new(s).poll_flush(cx),
            Client::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Client::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Client::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Client::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Client::Upgrading => Poll::Ready(Err(upgrading())),
        }
    }
}

/// Reads CRLF (or LF) terminated lines from a stream, with a length cap.
#[derive(Default)]
struct LineReader {
    buf: Vec<u8>,
}

/// One read from a [`LineReader`].
enum Line {
    Text(String),
    Closed,
    TooLong,
}

impl LineReader {
    async fn next<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        r: &mut R,
        max: usize,
    ) -> io::Result<Line> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Line::Text(String::from_utf8_lossy(&line).into_owned()));
            }
            if self.buf.len() > max {
                return Ok(Line::TooLong);
            }
            let mut chunk = [0u8; 4096];
            let n = r.read(&mut chunk).await?;
            if n == 0 {
                return Ok(Line::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Bytes received but not yet returned as a line.
    fn pending(&self) -> bool {
        !self.buf.is_empty()
    }
}

/// `VERB rest` with the verb upper-cased.
fn split_command(line: &str) -> (String, &str) {
    let line = line.trim_start();
    match line.split_once(' ') {
        Some((verb, rest)) => (verb.to_ascii_uppercase(), rest),
        None => (line.to_ascii_uppercase(), ""),
    }
}

/// RFC 775's X-verbs (XCUP, XCWD, XPWD, XMKD, XRMD), which vsftpd accepts and libunftp does
/// not, renamed to the verbs libunftp knows; any other line is returned as it is.
fn with_modern_verb(line: String) -> String {
    let (verb, arg) = split_command(&line);
    let modern = match verb.as_str() {
        "XCUP" => "CDUP",
        "XCWD" => "CWD",
        "XPWD" => "PWD",
        "XMKD" => "MKD",
        "XRMD" => "RMD",
        _ => return line,
    };
    if arg.is_empty() {
        modern.to_string()
    } else {
        format!("{modern} {arg}")
    }
}

/// A PORT or EPRT: the line for libunftp, or the reply to send instead (vsftpd's words).
async fn active_mode(
    shared: &Arc<SessionShared>,
    verb: &str,
    arg: &str,
) -> Result<String, &'static str> {
    let config = &shared.config;
    let eprt = verb == "EPRT";
    let target = if eprt {
        active::parse_eprt(arg).ok_or("500 Bad EPRT command.")?
    } else {
        active::parse_port(arg).ok_or("500 Illegal PORT command.")?
    };
    if !active::allowed(target, shared.client_ip, config.port_promiscuous) {
        tracing::warn!(address = %target, "PORT/EPRT to another host or a privileged port refused (port_promiscuous = false)");
        return Err(if eprt {
            "500 Illegal EPRT command."
        } else {
            "500 Illegal PORT command."
        });
    }
    if shared.client_ip.is_ipv6() {
        // libunftp's data connection must come from the client's address, and its PORT is IPv4
        // only (see `active`).
        return Err("522 Active mode is not supported over IPv6; use EPSV.");
    }
    let wait = Duration::from_secs(config.connect_timeout.max(1));
    active::prepare(shared, target, wait)
        .await
        .ok_or("425 Failed to establish connection.")
}

/// A complete reply from libunftp: all its lines, and its code.
struct EngineReply {
    code: u16,
    text: String,
}

async fn read_engine_reply<R: AsyncRead + Unpin>(
    lines: &mut LineReader,
    r: &mut R,
) -> io::Result<EngineReply> {
    let mut text = String::new();
    loop {
        let line = match lines.next(r, MAX_ENGINE_LINE).await? {
            Line::Text(l) => l,
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

/// Send one reply line; a client that cannot take it has gone.
async fn say<W: AsyncWrite + Unpin>(client: &mut W, text: &str) -> Result<(), ExitReason> {
    reply(client, text).await.map_err(|_| ExitReason::Closed)
}

async fn reply<W: AsyncWrite + Unpin>(client: &mut W, text: &str) -> io::Result<()> {
    client.write_all(text.as_bytes()).await?;
    client.write_all(b"\r\n").await?;
    client.flush().await
}

/// What the relay needs besides the two connections.
pub struct RelaySetup {
    pub shared: Arc<SessionShared>,
    pub tls: Option<TlsAcceptor>,
    /// The whole greeting, `220-` lines and the final `220 ` line, CRLF-terminated.
    pub greeting: String,
}

/// Serve the client until the session ends; returns why it ended.
pub async fn run(client: TcpStream, engine: TcpStream, setup: RelaySetup) -> ExitReason {
    let (engine_read, mut engine_write) = engine.into_split();
    let mut engine_read = engine_read;
    let mut engine_lines = LineReader::default();
    let mut client = Client::Plain(client);
    let shared = setup.shared.clone();

    // libunftp's greeting is replaced by ours.
    if read_engine_reply(&mut engine_lines, &mut engine_read)
        .await
        .is_err()
    {
        return ExitReason::Error;
    }
    if client.write_all(setup.greeting.as_bytes()).await.is_err() {
        return ExitReason::Closed;
    }
    let mut login = Login {
        shared: &shared,
        tls: setup.tls,
        client_lines: LineReader::default(),
        pending_user: None,
        tls_active: false,
    };
    let outcome = login
        .run(
            &mut client,
            &mut engine_lines,
            &mut engine_read,
            &mut engine_write,
        )
        .await;
    let client_lines = std::mem::take(&mut login.client_lines);
    match outcome {
        Ok(()) => {}
        Err(reason) => {
            let _ = client.shutdown().await;
            return reason;
        }
    }
    forward(
        client,
        client_lines,
        engine_lines,
        engine_read,
        engine_write,
        shared,
    )
    .await
}

/// The pre-login conversation, in lockstep with libunftp.
struct Login<'a> {
    shared: &'a Arc<SessionShared>,
    tls: Option<TlsAcceptor>,
    client_lines: LineReader,
    pending_user: Option<String>,
    tls_active: bool,
}

type EngineRead = tokio::net::tcp::OwnedReadHalf;
type EngineWrite = tokio::net::tcp::OwnedWriteHalf;

impl Login<'_> {
    async fn run(
        &mut self,
        client: &mut Client,
        engine_lines: &mut LineReader,
        engine_read: &mut EngineRead,
        engine_write: &mut EngineWrite,
    ) -> Result<(), ExitReason> {
        let config = &self.shared.config;
        let deadline = Instant::now() + Duration::from_secs(config.login_timeout.max(1));
        loop {
            let line = match tokio::time::timeout_at(
                deadline.into(),
                self.client_lines.next(client, MAX_LINE),
            )
            .await
            {
                Err(_) => {
                    tracing::info!(
                        seconds = config.login_timeout,
                        "no login in time; closing the connection"
                    );
                    let _ = reply(client, "421 Timeout.").await;
                    return Err(ExitReason::Timeout);
                }
                Ok(Err(_)) | Ok(Ok(Line::Closed)) => return Err(ExitReason::Closed),
                Ok(Ok(Line::TooLong)) => {
                    tracing::warn!("command line too long before login; closing the connection");
                    let _ = reply(client, "500 Command line too long.").await;
                    return Err(ExitReason::Refused);
                }
                Ok(Ok(Line::Text(l))) => l,
            };
            let (verb, arg) = split_command(&line);
            let result = match verb.as_str() {
                "AUTH" => self.auth(client, arg).await,
                "USER" => match self.user(client, arg.trim()).await {
                    // no_anon_password: an anonymous user is logged in at USER, as vsftpd does.
                    Ok(true) => match self
                        .pass(client, "", engine_lines, engine_read, engine_write)
                        .await
                    {
                        Ok(true) => return Ok(()),
                        Ok(false) => Ok(()),
                        Err(reason) => return Err(reason),
                    },
                    Ok(false) => Ok(()),
                    Err(reason) => Err(reason),
                },
                "PASS" => match self
                    .pass(client, arg, engine_lines, engine_read, engine_write)
                    .await
                {
                    Ok(true) => return Ok(()),
                    Ok(false) => Ok(()),
                    Err(reason) => return Err(reason),
                },
                "QUIT" => {
                    let _ = reply(client, "221 Goodbye.").await;
                    return Err(ExitReason::Closed);
                }
                // Commands libunftp answers the same before login (FEAT, SYST, OPTS, PBSZ,
                // PROT, NOOP, HELP, ...) or refuses with a 530 itself.
                _ => {
                    self.ask_engine(client, &line, engine_lines, engine_read, engine_write)
                        .await
                }
            };
            result?;
        }
    }

    async fn ask_engine(
        &mut self,
        client: &mut Client,
        line: &str,
        engine_lines: &mut LineReader,
        engine_read: &mut EngineRead,
        engine_write: &mut EngineWrite,
    ) -> Result<(), ExitReason> {
        let answer = engine_round_trip(line, engine_lines, engine_read, engine_write)
            .await
            .map_err(|_| ExitReason::Error)?;
        client
            .write_all(answer.text.as_bytes())
            .await
            .map_err(|_| ExitReason::Closed)?;
        client.flush().await.map_err(|_| ExitReason::Closed)
    }

    async fn auth(&mut self, client: &mut Client, arg: &str) -> Result<(), ExitReason> {
        let Some(acceptor) = self.tls.clone() else {
            return say(client, "530 Please login with USER and PASS.").await;
        };
        if self.tls_active {
            return say(client, "503 Already using TLS.").await;
        }
        if !matches!(
            arg.trim().to_ascii_uppercase().as_str(),
            "TLS" | "SSL" | "TLS-C" | "TLS-P"
        ) {
            return say(client, "504 Unknown AUTH type.").await;
        }
        say(client, "234 Proceed with negotiation.").await?;
        if self.client_lines.pending() {
            tracing::warn!("client sent data after AUTH TLS before the handshake; closing");
            return Err(ExitReason::Refused);
        }
        let Client::Plain(tcp) = std::mem::replace(client, Client::Upgrading) else {
            return Err(ExitReason::Error);
        };
        match acceptor.accept(tcp).await {
            Ok(tls) => {
                *client = Client::Tls(Box::new(tls));
                self.tls_active = true;
                Ok(())
            }
            Err(e) => {
                tracing::info!(error = %e, "control connection TLS handshake failed");
                Err(ExitReason::Closed)
            }
        }
    }

    /// Returns Ok(true) when the login should proceed without a password (`no_anon_password`).
    async fn user(&mut self, client: &mut Client, name: &str) -> Result<bool, ExitReason> {
        let shared = self.shared;
        let config = &shared.config;
        if name.is_empty() || name.len() > MAX_USER {
            return say(client, "530 Permission denied.").await.map(|()| false);
        }
        let anonymous = config.anonymous_enable && config.is_anonymous_name(name);
        if !anonymous && shared.users.refuses(name) {
            tracing::warn!(user = name, "refused at USER by userlist_file");
            say(client, "530 Permission denied.").await?;
            return Err(ExitReason::Refused);
        }
        if config.ssl_enable {
            if anonymous && self.tls_active && !config.allow_anon_ssl {
                tracing::warn!(
                    user = name,
                    "anonymous login over TLS refused (allow_anon_ssl = false)"
                );
                return say(client, "530 Anonymous sessions may not use encryption.")
                    .await
                    .map(|()| false);
            }
            if !self.tls_active && anonymous && config.force_anon_logins_ssl {
                tracing::warn!(
                    user = name,
                    "plain-text anonymous login refused (force_anon_logins_ssl)"
                );
                return say(client, "530 Anonymous sessions must use encryption.")
                    .await
                    .map(|()| false);
            }
            if !self.tls_active && !anonymous && config.force_local_logins_ssl {
                tracing::warn!(
                    user = name,
                    "plain-text login refused (force_local_logins_ssl)"
                );
                return say(client, "530 Non-anonymous sessions must use encryption.")
                    .await
                    .map(|()| false);
            }
        }
        self.pending_user = Some(name.to_string());
        if anonymous && config.no_anon_password {
            return Ok(true);
        }
        say(client, "331 Please specify the password.")
            .await
            .map(|()| false)
    }

    /// Returns Ok(true) once logged in (libunftp included).
    async fn pass(
        &mut self,
        client: &mut Client,
        password: &str,
        engine_lines: &mut LineReader,
        engine_read: &mut EngineRead,
        engine_write: &mut EngineWrite,
    ) -> Result<bool, ExitReason> {
        let shared = self.shared;
        let config = &shared.config;
        let Some(user) = self.pending_user.take() else {
            reply(client, "503 Login with USER first.")
                .await
                .map_err(|_| ExitReason::Closed)?;
            return Ok(false);
        };
        let password = password.as_bytes().to_vec();
        if password.len() > MAX_PASSWORD {
            tokio::time::sleep(Duration::from_secs(config.delay_failed_login)).await;
            reply(client, "530 Login incorrect.")
                .await
                .map_err(|_| ExitReason::Closed)?;
            return Ok(false);
        }
        let request = Request::Login {
            user: user.clone(),
            password,
            tls: self.tls_active,
        };
        let answer = shared.ask_monitor(&request).await;
        if let Request::Login { mut password, .. } = request {
            password.iter_mut().for_each(|b| *b = 0);
        }
        let (grant, dir) = match answer {
            Ok((Reply::Granted(grant), Some(dir))) => (grant, dir),
            Ok((Reply::Denied { disconnect }, None)) => {
                tokio::time::sleep(Duration::from_secs(config.delay_failed_login)).await;
                reply(client, "530 Login incorrect.")
                    .await
                    .map_err(|_| ExitReason::Closed)?;
                if disconnect {
                    return Err(ExitReason::LoginFailures);
                }
                return Ok(false);
            }
            _ => {
                tracing::error!("lost the monitor during login; ending the session");
                return Err(ExitReason::Error);
            }
        };
        let jailed = grant.jailed;
        let start_dir = grant.start_dir.clone();
        *shared.grant.lock().unwrap_or_else(|p| p.into_inner()) = Some((grant, dir));

        // Log libunftp in with the one-time token; its `enter` jails and drops the process.
        let engine_error = |_| ExitReason::Error;
        let answer = engine_round_trip(
            &format!("USER {user}"),
            engine_lines,
            engine_read,
            engine_write,
        )
        .await
        .map_err(engine_error)?;
        if answer.code != 331 {
            tracing::error!(code = answer.code, "FTP engine refused USER");
            return Err(ExitReason::Error);
        }
        let answer = engine_round_trip(
            &format!("PASS {}", shared.login_token),
            engine_lines,
            engine_read,
            engine_write,
        )
        .await
        .map_err(engine_error)?;
        if answer.code != 230 {
            if let Some((text, reason)) = shared.take_ending() {
                let _ = reply(client, &text).await;
                return Err(reason);
            }
            tracing::error!(code = answer.code, "FTP engine refused the granted login");
            return Err(ExitReason::Error);
        }
        if !jailed {
            // libunftp starts every session at "/": take the user to their start directory.
            let answer = engine_round_trip(
                &format!("CWD {start_dir}"),
                engine_lines,
                engine_read,
                engine_write,
            )
            .await
            .map_err(engine_error)?;
            if answer.code != 250 {
                tracing::warn!(start = %start_dir, "cannot change to the start directory; starting at /");
            }
        }
        reply(client, "230 Login successful.")
            .await
            .map_err(|_| ExitReason::Closed)?;
        Ok(true)
    }
}

async fn engine_round_trip(
    line: &str,
    engine_lines: &mut LineReader,
    engine_read: &mut EngineRead,
    engine_write: &mut EngineWrite,
) -> io::Result<EngineReply> {
    engine_write.write_all(line.as_bytes()).await?;
    engine_write.write_all(b"\r\n").await?;
    read_engine_reply(engine_lines, engine_read).await
}

/// After login: commands client → engine, replies engine → client, line by line.
async fn forward(
    client: Client,
    mut client_lines: LineReader,
    mut engine_lines: LineReader,
    mut engine_read: EngineRead,
    mut engine_write: EngineWrite,
    shared: Arc<SessionShared>,
) -> ExitReason {
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (to_client, mut outbox) = mpsc::channel::<Vec<u8>>(64);
    // One writer, so lines from the engine and the relay's own replies never interleave.
    let writer = tokio::spawn(async move {
        while let Some(bytes) = outbox.recv().await {
            if client_write.write_all(&bytes).await.is_err() || client_write.flush().await.is_err()
            {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    });
    let engine_to_client = to_client.clone();
    let mut replies = tokio::spawn(async move {
        while let Ok(Line::Text(line)) = engine_lines.next(&mut engine_read, MAX_ENGINE_LINE).await
        {
            let mut bytes = line.into_bytes();
            bytes.extend_from_slice(b"\r\n");
            if engine_to_client.send(bytes).await.is_err() {
                break;
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
    let reason = loop {
        let data_deadline = awaiting_data.map(|(at, _)| at);
        let next = tokio::select! {
            line = tokio::time::timeout(idle, client_lines.next(&mut client_read, MAX_LINE)) => line,
            _ = tokio::time::sleep_until(data_deadline.unwrap_or_else(tokio::time::Instant::now)), if data_deadline.is_some() => {
                if let Some((_, seen)) = awaiting_data.take()
                    && shared.data_connections.load(Ordering::SeqCst) == seen
                {
                    tracing::info!(seconds = accept_timeout.as_secs(), "no data connection in time");
                    let _ = to_client.send(say("425 Failed to establish connection.")).await;
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
                tracing::warn!("command line too long; closing the connection");
                let _ = to_client.send(say("500 Command line too long.")).await;
                break ExitReason::Refused;
            }
            Ok(Ok(Line::Text(line))) => with_modern_verb(line),
        };
        let (verb, _) = split_command(&line);
        let own_answer = match verb.as_str() {
            "USER" => Some("530 Can't change to another user."),
            "PASS" => Some("230 Already logged in."),
            "AUTH" => Some("503 Already logged in."),
            // libunftp accepts RNFR without asking the storage backend.
            "RNFR" | "RNTO" if !shared.may_rename() => Some("550 Permission denied."),
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
        if matches!(verb.as_str(), "LIST" | "NLST") {
            shared.set_list_flags(ListFlags::parse(split_command(&line).1));
        }
        if verb == "CDUP" {
            shared.working_dir_up();
        }
        // Active mode: checked here, connected by the monitor, libunftp given a stand-in.
        let line = if matches!(verb.as_str(), "PORT" | "EPRT") {
            match active_mode(&shared, &verb, split_command(&line).1).await {
                Ok(engine_line) => engine_line,
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
            let seen = shared.data_connections.load(Ordering::SeqCst);
            awaiting_data = Some((tokio::time::Instant::now() + accept_timeout, seen));
        }
        let mut bytes = line.into_bytes();
        bytes.extend_from_slice(b"\r\n");
        if engine_write.write_all(&bytes).await.is_err() {
            break ExitReason::Closed;
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
        assert_eq!(with_modern_verb("XPWD".into()), "PWD");
        assert_eq!(with_modern_verb("xcup".into()), "CDUP");
        assert_eq!(with_modern_verb("XCWD sub dir".into()), "CWD sub dir");
        assert_eq!(with_modern_verb("XMKD new".into()), "MKD new");
        assert_eq!(with_modern_verb("XRMD old".into()), "RMD old");
        assert_eq!(with_modern_verb("RETR XPWD".into()), "RETR XPWD");
        assert_eq!(with_modern_verb("XPWDX".into()), "XPWDX");
    }

    #[tokio::test]
    async fn lines_are_split_capped_and_end_at_close() {
        let mut input: &[u8] = b"USER a\r\nPASS b\nNOOP";
        let mut lines = LineReader::default();
        assert!(
            matches!(lines.next(&mut input, 100).await.unwrap(), Line::Text(l) if l == "USER a")
        );
        assert!(
            matches!(lines.next(&mut input, 100).await.unwrap(), Line::Text(l) if l == "PASS b")
        );
        assert!(matches!(
            lines.next(&mut input, 100).await.unwrap(),
            Line::Closed
        ));
        let long = vec![b'x'; 200];
        let mut input: &[u8] = &long;
        assert!(matches!(
            LineReader::default().next(&mut input, 100).await.unwrap(),
            Line::TooLong
        ));
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

    #[test]
    fn commands_split_into_verb_and_argument() {
        assert_eq!(split_command("user alice"), ("USER".to_string(), "alice"));
        assert_eq!(
            split_command("PASS with space"),
            ("PASS".to_string(), "with space")
        );
        assert_eq!(split_command("noop"), ("NOOP".to_string(), ""));
    }
}
