//! The session's records, kept by its monitor: one journal line per login, transfer,
//! directory operation and session end, and the same events in vsftpd's log files
//! (`crate::records`).
//!
//! SECURITY: the user, client address and port, session pid and time in every record are the
//! monitor's own; the worker's events only add what happened (path, bytes, duration, result),
//! and are rate-limited here, so a compromised worker can neither name another user or
//! address nor fill the disk faster than a busy session would. A login is logged as accepted
//! only once the worker has started (a writable jail root is a refusal, never "login ok").

use std::net::SocketAddr;
use std::time::Instant;

use crate::config::Config;
use crate::logging::Escaped;
use crate::protocol::event::{Direction, Event, Op};
use crate::protocol::monitor::Grant;
use crate::protocol::tally::{LoginResult, Tally};
use crate::records::files::{self, Outputs};
use crate::records::{self, Entry, Who, Xfer};

/// Longest anonymous password (e-mail address) kept for the records.
const MAX_ANON_PASSWORD: usize = 64;

/// A token bucket: at most `burst` at once, `per_second` on average.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
    dropped: u64,
}

impl Bucket {
    fn new(burst: f64, per_second: f64) -> Bucket {
        Bucket {
            tokens: burst,
            burst,
            per_second,
            last: Instant::now(),
            dropped: 0,
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.dropped += 1;
            false
        }
    }
}

/// An accepted login whose worker has not said yet that it started.
#[derive(Debug)]
struct Pending {
    jailed: bool,
    anonymous: bool,
    start: String,
}

/// Totals of a session, for its last line (and the master's metrics).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub uploaded: u64,
    pub downloaded: u64,
    pub transfers_ok: u64,
    pub transfers_failed: u64,
}

/// One session's records.
#[derive(Debug)]
pub struct SessionRecords {
    outputs: Outputs,
    pid: u32,
    client: SocketAddr,
    started: Instant,
    /// The name of the accepted login (as the client typed it; the monitor accepted it, so it
    /// is a plausible account name or `ftp`/`anonymous` in some case).
    user: Option<String>,
    anon_password: Option<String>,
    pending: Option<Pending>,
    /// The worker said it started (once only).
    worker_started: bool,
    totals: Totals,
    events: Bucket,
    protocol: Bucket,
}

impl SessionRecords {
    pub fn new(config: &Config, client: SocketAddr) -> SessionRecords {
        SessionRecords {
            outputs: Outputs::from_config(config),
            // The host's pid: in the session's PID namespace every monitor is pid 1.
            pid: super::host_pid(),
            client,
            started: Instant::now(),
            user: None,
            anon_password: None,
            pending: None,
            worker_started: false,
            totals: Totals::default(),
            // SECURITY: a bound on what a compromised worker can make the monitor write, above
            // what a real session does: small files on loopback reach ~1,000 transfers a
            // second per session (two events each, the 4 KiB benchmark row). Beyond this the
            // records are dropped and counted (one warning at session end).
            events: Bucket::new(10_000.0, 2_500.0),
            protocol: Bucket::new(20_000.0, 10_000.0),
        }
    }

    fn ip(&self) -> std::net::IpAddr {
        crate::jail::netns::unmapped(self.client.ip())
    }

    fn who<'a>(&'a self, user: Option<&'a str>) -> Who<'a> {
        Who {
            pid: self.pid,
            client: self.ip(),
            user,
            anon_password: self.anon_password.as_deref(),
        }
    }

    /// One vsftpd-format record to every vsftpd-format output.
    fn vsftpd(&self, user: Option<&str>, ok: bool, entry: Entry<'_>, severe: bool) {
        if !self.outputs.vsftpd_format() {
            return;
        }
        let now = self.outputs.now();
        let who = self.who(user);
        if let Some(path) = &self.outputs.vsftpd_log {
            files::append(path, &records::vsftpd_line(now, &who, ok, entry, false));
        }
        if self.outputs.syslog {
            files::syslog(&records::vsftpd_line(now, &who, ok, entry, true), severe);
        }
    }

    /// The connection arrived (vsftpd's `CONNECT` line).
    pub fn connected(&self) {
        self.vsftpd(None, true, Entry::Connect, false);
    }

    /// A USER/PASS pair the monitor refused.
    pub fn login_refused(&self, user: &str, reason: &str) {
        // The client's address comes first and what it typed last: fail2ban's filter reads
        // the address before anything a client controls.
        tracing::warn!(client = %self.ip(), port = self.client.port(), pid = self.pid,
            reason = %Escaped(reason), user = %Escaped(user), "login refused");
        let user = records::user_field(user);
        self.vsftpd(Some(&user), false, Entry::Login, true);
        super::tally::count(Tally::Login(LoginResult::Failed));
    }

    /// A login PAM accepted but the session may not have (`max_per_user`). Not a failed
    /// password: "session refused" and no `FAIL LOGIN` record, so fail2ban does not count it.
    pub fn session_refused(&self, user: &str, reason: &str) {
        tracing::warn!(client = %self.ip(), port = self.client.port(), pid = self.pid,
            reason = %Escaped(reason), user = %Escaped(user), "session refused");
    }

    /// A login the monitor accepted and started a worker for; logged when the worker starts.
    pub fn login_accepted(&mut self, user: &str, grant: &Grant, password: &[u8]) {
        self.user = Some(user.to_string());
        if grant.anonymous {
            let mut pass = records::printable(password);
            pass.truncate(
                pass.char_indices()
                    .nth(MAX_ANON_PASSWORD)
                    .map_or(pass.len(), |(i, _)| i),
            );
            self.anon_password = Some(pass);
        }
        self.pending = Some(Pending {
            jailed: grant.jailed,
            anonymous: grant.anonymous,
            start: grant.start_dir.clone(),
        });
    }

    fn user_text(&self) -> String {
        records::user_field(self.user.as_deref().unwrap_or(""))
    }

    /// The worker's first event. Returns false when it is not its first (a violation).
    fn started(&mut self, writable_root_refused: bool) -> bool {
        if self.worker_started {
            return false;
        }
        self.worker_started = true;
        let Some(p) = self.pending.take() else {
            return false;
        };
        let user = self.user.clone().unwrap_or_default();
        if writable_root_refused {
            // Not a failed password: no FAIL LOGIN for fail2ban, but never "login ok" either.
            // "session refused", not "login refused": fail2ban counts only the latter.
            tracing::warn!(client = %self.ip(), port = self.client.port(), pid = self.pid,
                reason = %"the jail root is writable by the user (allow_writeable_chroot = false, or anonymous)",
                user = %Escaped(&user), "session refused");
            self.user = None;
            self.anon_password = None;
            super::tally::count(Tally::Login(LoginResult::Refused));
        } else {
            tracing::info!(client = %self.ip(), port = self.client.port(), pid = self.pid,
                user = %Escaped(&user), jailed = p.jailed, anonymous = p.anonymous,
                start = %Escaped(&p.start), "login ok");
            let user = self.user_text();
            self.vsftpd(Some(&user), true, Entry::Login, false);
            super::tally::count(Tally::Login(LoginResult::Ok));
        }
        true
    }

    /// One event from the worker (already decoded and allowed by the request table).
    /// Returns false when the event breaks the protocol (a second `Started`).
    pub fn event(&mut self, event: Event) -> bool {
        match event {
            Event::Started {
                writable_root_refused,
            } => return self.started(writable_root_refused),
            // SECURITY: nothing is recorded for a worker that has not started (or refused).
            _ if !self.worker_started || self.user.is_none() => {}
            Event::Transfer {
                direction,
                path,
                bytes,
                micros,
                ascii,
                ok,
            } => {
                let (total, word) = match direction {
                    Direction::Upload => (&mut self.totals.uploaded, "upload"),
                    Direction::Download => (&mut self.totals.downloaded, "download"),
                };
                *total = total.saturating_add(bytes);
                if ok {
                    self.totals.transfers_ok += 1;
                } else {
                    self.totals.transfers_failed += 1;
                }
                if !self.events.take() {
                    return true;
                }
                // SECURITY: counted under the records' rate limit, so a worker flooding events
                // cannot flood the spawner either.
                super::tally::count(Tally::Transfer {
                    direction,
                    ok,
                    bytes,
                });
                let user = self.user_text();
                tracing::info!(client = %self.ip(), port = self.client.port(), pid = self.pid,
                    user = %Escaped(&user), path = %Escaped(&records::printable(&path)), bytes,
                    duration_ms = micros / 1000, result = %if ok { "ok" } else { "failed" }, "{word}");
                let entry = Entry::Transfer {
                    direction,
                    path: &path,
                    bytes,
                    micros,
                };
                self.vsftpd(Some(&user), ok, entry, false);
                if let Some(xferlog) = &self.outputs.xferlog {
                    let x = Xfer {
                        direction,
                        path: &path,
                        bytes,
                        micros,
                        ascii,
                        ok,
                    };
                    let who = self.who(Some(&user));
                    files::append(xferlog, &records::xferlog_line(self.outputs.now(), &who, x));
                }
            }
            Event::Op { op, path, to, ok } => {
                if !self.events.take() {
                    return true;
                }
                let user = self.user_text();
                let word = match op {
                    Op::Mkdir => "mkdir",
                    Op::Delete => "delete",
                    Op::Rmdir => "rmdir",
                    Op::Rename => "rename",
                    Op::Chmod => "chmod",
                };
                let result = if ok { "ok" } else { "failed" };
                let shown = records::printable(&path);
                match &to {
                    Some(to) => tracing::info!(client = %self.ip(), port = self.client.port(),
                        pid = self.pid, user = %Escaped(&user), path = %Escaped(&shown),
                        to = %Escaped(&records::printable(to)), result = %result, "{word}"),
                    None => tracing::info!(client = %self.ip(), port = self.client.port(),
                        pid = self.pid, user = %Escaped(&user), path = %Escaped(&shown),
                        result = %result, "{word}"),
                }
                let entry = Entry::Op {
                    op,
                    path: &path,
                    to: to.as_deref(),
                };
                self.vsftpd(Some(&user), ok, entry, false);
            }
            Event::Protocol { input, line } => {
                if self.outputs.protocol && self.protocol.take() {
                    let user = self.user_text();
                    self.vsftpd(
                        Some(&user),
                        true,
                        Entry::Protocol { input, line: &line },
                        false,
                    );
                }
            }
        }
        true
    }

    /// A command or reply line of the pre-login conversation (`log_ftp_protocol`), reported
    /// by the pre-login process (which never sends a password: `PASS <password>`). Written
    /// without a user name: none is logged in yet, and a typed name is the client's.
    pub fn prelogin_protocol(&mut self, input: bool, line: &[u8]) {
        if self.outputs.protocol && self.protocol.take() {
            self.vsftpd(None, true, Entry::Protocol { input, line }, false);
        }
    }

    /// The session's last line. `reason`: how it ended; `failures`: failed logins.
    pub fn ended(&mut self, reason: &str, failures: u32) -> Totals {
        if self.pending.take().is_some() {
            tracing::warn!(client = %self.ip(), port = self.client.port(), pid = self.pid,
                reason = %"the session process ended before it started serving",
                user = %Escaped(self.user.as_deref().unwrap_or("")), "session refused");
            self.user = None;
            super::tally::count(Tally::Login(LoginResult::Refused));
        }
        let dropped = self.events.dropped + self.protocol.dropped;
        if dropped > 0 {
            tracing::warn!(client = %self.ip(), port = self.client.port(), pid = self.pid,
                dropped, "records dropped: the session reported events faster than allowed");
        }
        let user = self.user.as_deref().map(Escaped);
        let t = self.totals;
        let duration_ms = self.started.elapsed().as_millis() as u64;
        match user {
            Some(user) => tracing::info!(client = %self.ip(), port = self.client.port(),
                pid = self.pid, user = %user, duration_ms, uploaded = t.uploaded,
                downloaded = t.downloaded, transfers = t.transfers_ok + t.transfers_failed,
                failed_logins = failures, reason, "session ended"),
            None => tracing::info!(client = %self.ip(), port = self.client.port(),
                pid = self.pid, duration_ms, failed_logins = failures, reason,
                "session ended"),
        }
        t
    }
}
