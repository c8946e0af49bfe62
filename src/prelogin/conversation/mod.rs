//! The pre-login conversation: greeting, `AUTH TLS`, `USER`/`PASS` (decided by the monitor),
//! and the commands clients send before logging in, with vsftpd's replies; everything else
//! gets `530 Please login with USER and PASS.`
//!
//! SECURITY: the whole phase — TLS handshake and the monitor's answers included — is bounded
//! by `login_timeout`; every line goes through the one command parser; a client that goes
//! away ends the session. Passwords are zeroed after use and never logged.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::io::unix::AsyncFd;

use super::client::Client;
use crate::config::Config;
use crate::control::command;
use crate::control::line::{Line, LineReader, MAX_LINE};
use crate::logging::Escaped;
use crate::policy::UserList;
use crate::protocol::ExitReason;
use crate::protocol::event::{Event, MAX_LINE as MAX_EVENT_LINE};
use crate::protocol::link::Preamble;
use crate::protocol::monitor::{MAX_MESSAGE, MAX_PASSWORD, MAX_USER, Reply, Request};
use crate::tls::StoredSessions;

/// The features listed before login and (by the worker's relay) after it: RFC 2389. `UTF8`
/// (RFC 2640) only with `utf8_filesystem`, as vsftpd does.
pub fn features(tls: bool, utf8: bool) -> String {
    crate::control::features::list(
        tls,
        utf8,
        &crate::storage::facts::FactSet::default().feat_line(),
    )
}

/// Whether the first line read (and what follows it) is a PROXY protocol header: v1 is a
/// `PROXY ` line; v2's signature `\r\n\r\n\0\r\nQUIT\n` reads as an empty first line.
fn is_proxy_header(first_line: &[u8], rest: &[u8]) -> bool {
    const V2_REST: &[u8] = b"\r\n\0\r\nQUIT\n";
    let v1 = first_line.len() >= 6 && first_line[..6].eq_ignore_ascii_case(b"PROXY ");
    let v2 = first_line.is_empty() && {
        let n = rest.len().min(V2_REST.len());
        n > 0 && rest[..n] == V2_REST[..n]
    };
    v1 || v2
}

/// How one command of the conversation turned out.
enum Step {
    /// Go on reading commands.
    Continue,
    /// The monitor accepted the login and started the worker: here is the link to it.
    LoggedIn(OwnedFd),
}

pub struct Conversation<'a> {
    config: &'a Config,
    users: &'a UserList,
    /// TLS is offered (FEAT, AUTH, PBSZ/PROT).
    tls_offered: bool,
    /// Taken at the first AUTH TLS.
    tls: Option<super::LazyTls<'a>>,
    stored: Option<Arc<StoredSessions>>,
    monitor: AsyncFd<OwnedFd>,
    client_address: String,
    lines: LineReader,
    pending_user: Option<String>,
    /// The pending USER's bytes were not UTF-8 (see `run`).
    pending_user_not_text: bool,
    preamble: Preamble,
}

impl<'a> Conversation<'a> {
    pub fn new(
        config: &'a Config,
        users: &'a UserList,
        tls: Option<super::LazyTls<'a>>,
        monitor: AsyncFd<OwnedFd>,
        client_address: String,
    ) -> Self {
        Conversation {
            config,
            users,
            tls_offered: tls.is_some(),
            tls,
            stored: None,
            monitor,
            client_address,
            lines: LineReader::default(),
            pending_user: None,
            pending_user_not_text: false,
            preamble: Preamble::default(),
        }
    }

    /// Greet, converse until a login is accepted, then carry the session to the worker.
    pub async fn run(mut self, client: tokio::net::TcpStream, greeting: String) -> ExitReason {
        let mut client = Client::Plain(client);
        let deadline = Instant::now() + Duration::from_secs(self.config.login_timeout.max(1));
        let outcome =
            tokio::time::timeout_at(deadline.into(), self.converse(&mut client, &greeting)).await;
        let link = match outcome {
            Err(_) => {
                tracing::info!(client = %self.client_address, seconds = self.config.login_timeout,
                    "no login in time; closing the connection");
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    self.say(&mut client, "421 Timeout."),
                )
                .await;
                let _ = tokio::time::timeout(Duration::from_secs(2), client.shutdown()).await;
                return ExitReason::Timeout;
            }
            Ok(Err(reason)) => {
                let _ = tokio::time::timeout(Duration::from_secs(2), client.shutdown()).await;
                return reason;
            }
            Ok(Ok(link)) => link,
        };
        if let Client::Plain(tcp) = &client {
            // A plain control connection: the worker reads it from now on; this process goes.
            self.preamble.handoff = true;
            self.preamble.pending = self.lines.take_pending();
            let message = self.preamble.encode();
            return match crate::sys::send_message(link.as_fd(), &message, Some(tcp.as_fd())) {
                Ok(()) => ExitReason::Closed,
                Err(e) => {
                    tracing::error!(error = %e, "cannot hand the connection to the worker");
                    ExitReason::Error
                }
            };
        }
        let link = std::os::unix::net::UnixStream::from(link);
        let link = match link
            .set_nonblocking(true)
            .and_then(|()| tokio::net::UnixStream::from_std(link))
        {
            Ok(l) => l,
            Err(_) => return ExitReason::Error,
        };
        if let Some(stored) = &self.stored {
            self.preamble.tls_sessions = stored.take();
        }
        let mut first = self.preamble.encode();
        // Commands the client sent after PASS, before the worker's 230, follow as they came.
        first.extend_from_slice(&self.lines.take_pending());
        super::pump::run(client, link, first).await
    }

    async fn converse(
        &mut self,
        client: &mut Client,
        greeting: &str,
    ) -> Result<OwnedFd, ExitReason> {
        // implicit_ssl: TLS from the first byte, the greeting inside it (vsftpd's order).
        if self.config.implicit_ssl && self.tls_offered {
            let acceptor = self.acceptor().map_err(|e| {
                tracing::error!("TLS: {e}");
                ExitReason::Error
            })?;
            self.start_tls(client, acceptor).await?;
        }
        for line in greeting.lines() {
            self.report(false, line.as_bytes()).await;
        }
        write(client, greeting).await?;
        let mut first = true;
        loop {
            let line = match self.lines.next(client, MAX_LINE).await {
                Err(_) | Ok(Line::Closed) => return Err(ExitReason::Closed),
                Ok(Line::TooLong) => {
                    first = false;
                    self.say(client, "500 Command line too long.").await?;
                    continue;
                }
                Ok(Line::Text(l)) => l,
            };
            self.report(true, &line).await;
            // SECURITY: with `proxy_protocol` on, the master reads a PROXY header only from
            // the listed load balancers; one reaching this process came from anyone else (or
            // is a client's second header behind a balancer): a forged client address, refused.
            if std::mem::take(&mut first)
                && self.config.proxy_protocol
                && is_proxy_header(&line, self.lines.buffered())
            {
                tracing::warn!(client = %self.client_address,
                    "PROXY protocol header from an address not in proxy_protocol_from; connection refused");
                let _ = self.say(client, "421 PROXY protocol header refused.").await;
                return Err(ExitReason::Refused);
            }
            let command = match command::parse(&line) {
                Ok(c) => c,
                Err(refusal) => {
                    tracing::info!(client = %self.client_address,
                        line = %Escaped(&String::from_utf8_lossy(&line)), "command refused before login");
                    self.say(client, refusal.reply()).await?;
                    continue;
                }
            };
            let arg = command.arg.as_ref();
            let step = match command.verb.as_str() {
                "AUTH" => self.auth(client, arg).await?,
                "USER" => {
                    // SECURITY: account names are text here and in the monitor (passwd, user
                    // lists); a USER whose bytes are not UTF-8 must never log in as the name
                    // its U+FFFD stand-ins spell: its PASS gets the monitor's refusal.
                    self.pending_user_not_text = command::argument_bytes(&line)
                        .is_ok_and(|b| std::str::from_utf8(b).is_err());
                    self.user(client, arg.trim()).await?
                }
                // The password's bytes as they came: PAM takes a C string, not text.
                "PASS" => {
                    let password = command::argument_bytes(&line).unwrap_or_default();
                    self.pass(client, password).await?
                }
                "QUIT" => {
                    let _ = self.say(client, "221 Goodbye.").await;
                    return Err(ExitReason::Closed);
                }
                "FEAT" => {
                    self.say(
                        client,
                        &features(self.tls_offered, self.config.utf8_filesystem),
                    )
                    .await?;
                    Step::Continue
                }
                "SYST" => {
                    self.say(client, "215 UNIX Type: L8").await?;
                    Step::Continue
                }
                "NOOP" => {
                    self.say(client, "200 NOOP ok.").await?;
                    Step::Continue
                }
                "OPTS" => {
                    let reply = if arg.trim().eq_ignore_ascii_case("UTF8 ON") {
                        "200 Always in UTF8 mode."
                    } else {
                        "501 Option not understood."
                    };
                    self.say(client, reply).await?;
                    Step::Continue
                }
                "PBSZ" | "PROT" if self.tls_offered => {
                    let reply = self.protection(&command.verb, arg);
                    self.say(client, reply).await?;
                    Step::Continue
                }
                _ => {
                    self.say(client, "530 Please login with USER and PASS.")
                        .await?;
                    Step::Continue
                }
            };
            if let Step::LoggedIn(link) = step {
                return Ok(link);
            }
        }
    }

    async fn user(&mut self, client: &mut Client, name: &str) -> Result<Step, ExitReason> {
        let config = self.config;
        let tls_active = self.preamble.control_tls;
        if name.is_empty() || name.len() > MAX_USER {
            self.say(client, "530 Permission denied.").await?;
            return Ok(Step::Continue);
        }
        let anonymous = config.anonymous_enable && config.is_anonymous_name(name);
        if !anonymous && self.users.refuses(name) {
            tracing::warn!(client = %self.client_address, user = %Escaped(name),
                "refused at USER by userlist_file");
            self.say(client, "530 Permission denied.").await?;
            return Err(ExitReason::Refused);
        }
        if config.ssl_enable {
            let refusal = if anonymous && tls_active && !config.allow_anon_ssl {
                Some((
                    "530 Anonymous sessions may not use encryption.",
                    "anonymous login over TLS refused (allow_anon_ssl = false)",
                ))
            } else if !tls_active && anonymous && config.force_anon_logins_ssl {
                Some((
                    "530 Anonymous sessions must use encryption.",
                    "plain-text anonymous login refused (force_anon_logins_ssl)",
                ))
            } else if !tls_active && !anonymous && config.force_local_logins_ssl {
                Some((
                    "530 Non-anonymous sessions must use encryption.",
                    "plain-text login refused (force_local_logins_ssl)",
                ))
            } else {
                None
            };
            if let Some((text, why)) = refusal {
                tracing::warn!(client = %self.client_address, user = %Escaped(name), "{why}");
                self.say(client, text).await?;
                return Ok(Step::Continue);
            }
        }
        self.pending_user = Some(name.to_string());
        if anonymous && config.no_anon_password {
            // no_anon_password: an anonymous user is logged in at USER, as vsftpd does.
            return self.pass(client, b"").await;
        }
        self.say(client, "331 Please specify the password.").await?;
        Ok(Step::Continue)
    }

    async fn pass(&mut self, client: &mut Client, password: &[u8]) -> Result<Step, ExitReason> {
        let Some(mut user) = self.pending_user.take() else {
            self.say(client, "503 Login with USER first.").await?;
            return Ok(Step::Continue);
        };
        let mut password = password.to_vec();
        if password.len() > MAX_PASSWORD || std::mem::take(&mut self.pending_user_not_text) {
            // Still the monitor's refusal, with its delay and its count: a name that can be
            // no account's.
            user.clear();
            password.clear();
        }
        let request = Request::Login {
            user,
            password,
            tls: self.preamble.control_tls,
        };
        let answer = self.ask_monitor(&request).await;
        if let Request::Login { mut password, .. } = request {
            password.iter_mut().for_each(|b| *b = 0);
        }
        match answer {
            Ok((Reply::LoggedIn, Some(link))) => Ok(Step::LoggedIn(link)),
            Ok((Reply::Denied { disconnect }, None)) => {
                self.say(client, "530 Login incorrect.").await?;
                if disconnect {
                    return Err(ExitReason::LoginFailures);
                }
                Ok(Step::Continue)
            }
            Ok((Reply::TooManySessions, None)) => {
                say(
                    client,
                    "421 There are too many connections from your login.",
                )
                .await?;
                Err(ExitReason::Refused)
            }
            Ok(_) => {
                tracing::error!("the monitor answered a login out of protocol; ending the session");
                Err(ExitReason::Error)
            }
            Err(e) => {
                tracing::error!(error = %e, "lost the monitor during login; ending the session");
                Err(ExitReason::Error)
            }
        }
    }

    /// `log_ftp_protocol`: one command (`input`) or reply line to the monitor, which writes
    /// it to `vsftpd_log_file`. One-way: the monitor answers no event.
    /// SECURITY: a `PASS` line is sent as `PASS <password>` (vsftpd's form), whatever follows.
    async fn report(&self, input: bool, line: &[u8]) {
        if !self.config.log_ftp_protocol {
            return;
        }
        let line = if input && is_pass(line) {
            b"PASS <password>".as_slice()
        } else {
            line
        };
        let line = line[..line.len().min(MAX_EVENT_LINE)].to_vec();
        let request = Request::Event(Event::Protocol { input, line });
        if let Err(e) = crate::sys::send_message_async(&self.monitor, &request.encode(), None).await
        {
            tracing::debug!(error = %e, "protocol line not reported");
        }
    }

    /// Send one reply (CRLF added), reported line by line with `log_ftp_protocol`.
    async fn say(&self, client: &mut Client, text: &str) -> Result<(), ExitReason> {
        for line in text.lines() {
            self.report(false, line.as_bytes()).await;
        }
        say(client, text).await
    }

    async fn ask_monitor(&self, request: &Request) -> std::io::Result<(Reply, Option<OwnedFd>)> {
        let mut bytes = request.encode();
        let sent = crate::sys::send_message_async(&self.monitor, &bytes, None).await;
        // The request carries the password.
        bytes.iter_mut().for_each(|b| *b = 0);
        sent?;
        let mut buf = vec![0u8; MAX_MESSAGE];
        let (len, fd) = crate::sys::recv_message_async(&self.monitor, &mut buf).await?;
        if len == 0 {
            return Err(std::io::Error::other("monitor closed the channel"));
        }
        let reply = Reply::decode(&buf[..len]).map_err(std::io::Error::other)?;
        Ok((reply, fd))
    }
}

/// Whether a command line is a `PASS` (any case, leading blanks ignored): never logged as typed.
fn is_pass(line: &[u8]) -> bool {
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    line[start..]
        .get(..4)
        .is_some_and(|verb| verb.eq_ignore_ascii_case(b"PASS"))
}

/// Write bytes; a client that cannot take them has gone.
async fn write(client: &mut Client, text: &str) -> Result<(), ExitReason> {
    client
        .write_all(text.as_bytes())
        .await
        .map_err(|_| ExitReason::Closed)?;
    client.flush().await.map_err(|_| ExitReason::Closed)
}

/// Send one reply (CRLF added).
async fn say(client: &mut Client, text: &str) -> Result<(), ExitReason> {
    write(client, &format!("{text}\r\n")).await
}

mod secure;
#[cfg(test)]
mod tests;
