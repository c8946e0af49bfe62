//! The monitor's request table and its handlers: which request is allowed from which child in
//! which phase of the session (OpenSSH `monitor.c`'s `{request, flags, handler}` table).
//!
//! SECURITY: both children parse bytes from the network and may be compromised. A request not
//! in the table for its sender and phase, a malformed message, or a message carrying a
//! descriptor ends the whole session (both children are killed). The monitor itself counts
//! failed logins, applies `max_login_fails` and the `delay_failed_login` wait (measured from
//! the request, so a refusal takes as long whatever the reason), and decides every data socket
//! again — none of it depends on the pre-login process or the worker obeying a reply. The one
//! request that may carry a descriptor is `ChownUpload` (see `chown`).

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

mod answers;
mod chown;
mod table;

use table::kind_of;
pub use table::{Kind, Peer, Phase, allowed};

use super::passive::{Passive, PassivePorts};
use super::records::SessionRecords;
use super::standin::WorkerNetwork;
use super::{Child, SessionSetup};
use crate::auth::PamLogin;
use crate::protocol::ExitReason;
use crate::protocol::event::Event;
use crate::protocol::monitor::{MAX_MESSAGE, Reply, Request};
use crate::sys;

/// Most handshake signatures one session gets (`AUTH TLS` is accepted once; a TLS 1.2
/// handshake signs once, TLS 1.3 once).
const MAX_SIGNATURES: u32 = 2;

/// How long a child may take to exit once its partner is gone.
const PARTNER_GONE_GRACE: Duration = Duration::from_secs(3);
/// How long the pre-login process has to send the last `530` after the last allowed failure.
const EXHAUSTED_GRACE: Duration = Duration::from_secs(2);

/// One session's monitor state.
struct Monitor<'a> {
    setup: &'a SessionSetup<'a>,
    prelogin: Child,
    worker: Option<Child>,
    phase: Phase,
    failures: u32,
    pam: Option<PamLogin>,
    ports: PassivePorts,
    /// The worker's network namespace, made before its fork (stand-in sockets are made there).
    network: Option<WorkerNetwork>,
    /// The one passive listener this session may have.
    passive: Option<Passive>,
    /// The spare listener the worker holds for its next passive request (see
    /// `passive_spare`): with `passive`, the most ports one session has.
    spare: Option<Passive>,
    /// Why the session must end now (a broken rule), for the log.
    violation: Option<String>,
    /// When to kill children that are still alive (their partner is gone, or logins ran out).
    kill_at: Option<Instant>,
    /// The certificate and key files, read (as root) when first needed: a signature, or the
    /// worker's fork (its data connections' TLS). `Some(None)`: tried and failed.
    tls_files: Option<Option<crate::tls::IdentityFiles>>,
    /// The server's key, parsed at the first signature.
    key: Option<std::sync::Arc<dyn rustls::sign::SigningKey>>,
    signatures: u32,
    /// The monitor signed a TLS handshake of this session's control connection.
    tls_seen: bool,
    records: SessionRecords,
    /// `max_per_user` refused this session's login (it ends "refused", not "failed logins").
    session_limit_reached: bool,
    /// Set at an anonymous login with `chown_uploads`: what a `ChownUpload` must match.
    anonymous_uploads: Option<chown::AnonymousUploads>,
}

/// Answer requests until both children have gone, then reap them and close PAM. Returns how
/// the session ended and how many logins failed. `prelogin`: the pre-login process's pid
/// (`None` when a test stands in for it), `channel`: the monitor's end of its channel.
pub fn serve(
    setup: &SessionSetup<'_>,
    prelogin: Option<Pid>,
    channel: OwnedFd,
) -> (ExitReason, u32) {
    let mut m = Monitor {
        setup,
        prelogin: Child {
            pid: prelogin,
            channel: Some(channel),
        },
        worker: None,
        phase: Phase::BeforeLogin,
        failures: 0,
        pam: None,
        ports: PassivePorts::from_config(setup.config),
        network: None,
        passive: None,
        spare: None,
        violation: None,
        kill_at: None,
        tls_files: None,
        key: None,
        signatures: 0,
        tls_seen: false,
        records: SessionRecords::new(setup.config, setup.addresses.client),
        session_limit_reached: false,
        anonymous_uploads: None,
    };
    m.records.connected();
    // Its pages are backed only once a message reaches them (most requests are a few dozen
    // bytes): `vec![0; MAX_MESSAGE]` would keep all four resident in every session.
    let mut buf = match crate::sys::ZeroedBuffer::new(MAX_MESSAGE) {
        Ok(buf) => buf,
        Err(e) => {
            tracing::error!(error = %e, "monitor: no request buffer; ending the session");
            m.kill_children();
            return m.finish();
        }
    };
    while m.violation.is_none() && (m.prelogin.channel.is_some() || m.worker_channel_open()) {
        m.wait_and_answer(&mut buf);
    }
    m.finish()
}

impl Monitor<'_> {
    /// The TLS files, read the first time they are needed (`ssl_enable` only).
    fn tls_files(&mut self) -> Option<&crate::tls::IdentityFiles> {
        let config = self.setup.config;
        self.tls_files
            .get_or_insert_with(|| {
                if !config.ssl_enable {
                    return None;
                }
                crate::tls::read_identity(config)
                    .map_err(|e| tracing::error!("TLS: {e}"))
                    .ok()
            })
            .as_ref()
    }

    fn worker_channel_open(&self) -> bool {
        self.worker.as_ref().is_some_and(|w| w.channel.is_some())
    }

    /// The earliest timer: the passive listener's expiry, the kill deadline.
    fn next_deadline(&self) -> Option<Instant> {
        let accept_timeout = Duration::from_secs(self.setup.config.accept_timeout.max(1));
        let expiry = self.passive.as_ref().map(|p| p.expires(accept_timeout));
        let spare_expiry = self.spare.as_ref().map(|r| r.expires(accept_timeout));
        [expiry, spare_expiry, self.kill_at]
            .into_iter()
            .flatten()
            .min()
    }

    fn wait_and_answer(&mut self, buf: &mut [u8]) {
        let timeout = match self.next_deadline() {
            None => PollTimeout::NONE,
            Some(at) => {
                let ms = at.saturating_duration_since(Instant::now()).as_millis();
                PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let (prelogin_ready, worker_ready, trap_ready, spare_trap_ready) = {
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(4);
            let mut slots = [None; 4];
            let wanted = PollFlags::POLLIN;
            if let Some(c) = &self.prelogin.channel {
                slots[0] = Some(fds.len());
                fds.push(PollFd::new(c.as_fd(), wanted));
            }
            if let Some(c) = self.worker.as_ref().and_then(|w| w.channel.as_ref()) {
                slots[1] = Some(fds.len());
                fds.push(PollFd::new(c.as_fd(), wanted));
            }
            if let Some(t) = self.passive.as_ref().and_then(|p| p.trap()) {
                slots[2] = Some(fds.len());
                fds.push(PollFd::new(t, wanted));
            }
            if let Some(t) = self.spare.as_ref().and_then(|p| p.trap()) {
                slots[3] = Some(fds.len());
                fds.push(PollFd::new(t, wanted));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => return,
                Err(e) => {
                    self.violation = Some(format!("poll failed: {e}"));
                    return;
                }
            }
            let ready = |slot: Option<usize>| {
                slot.and_then(|i| fds[i].revents())
                    .is_some_and(|r| !r.is_empty())
            };
            (
                ready(slots[0]),
                ready(slots[1]),
                ready(slots[2]),
                ready(slots[3]),
            )
        };
        let now = Instant::now();
        let accept_timeout = Duration::from_secs(self.setup.config.accept_timeout.max(1));
        if self
            .passive
            .as_ref()
            .is_some_and(|p| p.expires(accept_timeout) <= now)
        {
            // SECURITY: an unused passive port does not stay open.
            self.passive = None;
        }
        if self
            .spare
            .as_ref()
            .is_some_and(|r| r.expires(accept_timeout) <= now)
        {
            // SECURITY: nor does a spare nobody took (the worker stops using one well before).
            self.spare = None;
        }
        if self.kill_at.is_some_and(|at| at <= now) {
            self.kill_at = None;
            self.drain_channels();
            self.kill_children();
        }
        if trap_ready && let Some(p) = &self.passive {
            p.refuse_intruders();
        }
        if spare_trap_ready && let Some(p) = &self.spare {
            p.refuse_intruders();
        }
        if prelogin_ready {
            self.receive(Peer::Prelogin, buf);
        }
        if worker_ready && self.violation.is_none() {
            self.receive(Peer::Worker, buf);
        }
    }

    fn channel(&self, peer: Peer) -> Option<&OwnedFd> {
        match peer {
            Peer::Prelogin => self.prelogin.channel.as_ref(),
            Peer::Worker => self.worker.as_ref().and_then(|w| w.channel.as_ref()),
        }
    }

    /// The peer has closed its channel (it is exiting).
    fn gone(&mut self, peer: Peer) {
        match peer {
            Peer::Prelogin if self.worker_channel_open() => {
                // After a login: a plain connection was handed to the worker (the pre-login
                // process's work is done), or under TLS the worker sees its link close.
                self.prelogin.channel = None;
                self.reap_prelogin_soon();
                return;
            }
            Peer::Prelogin => self.prelogin.channel = None,
            Peer::Worker => {
                if let Some(w) = &mut self.worker {
                    w.channel = None;
                }
                self.passive = None;
                self.spare = None;
            }
        }
        // The partner notices on its own (its link closes); if it does not, it is killed.
        if self.kill_at.is_none() {
            self.kill_at = Some(Instant::now() + PARTNER_GONE_GRACE);
        }
    }

    fn receive(&mut self, peer: Peer, buf: &mut [u8]) {
        let Some(channel) = self.channel(peer) else {
            return;
        };
        let (len, fd) = match sys::recv_message(channel.as_fd(), buf) {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(nix::libc::EINTR) => return,
            Err(e) => {
                self.violation = Some(format!("bad message from the {peer:?}: {e}"));
                return;
            }
        };
        if len == 0 {
            self.gone(peer);
            return;
        }
        let request = match Request::decode(&buf[..len]) {
            Ok(r) => r,
            Err(e) => {
                self.violation = Some(format!("the {peer:?} sent a {e}"));
                return;
            }
        };
        buf[..len].iter_mut().for_each(|b| *b = 0);
        let kind = kind_of(&request);
        // SECURITY: a descriptor only rides on the one request made for it.
        if fd.is_some() != (kind == Kind::ChownUpload) {
            self.violation = Some(format!(
                "the {peer:?} sent a {kind:?} request {} a file descriptor",
                if fd.is_some() { "with" } else { "without" }
            ));
            return;
        }
        if !allowed(kind, peer, self.phase) {
            self.violation = Some(format!(
                "{kind:?} request from the {peer:?} is not allowed ({:?})",
                self.phase
            ));
            return;
        }
        match request {
            Request::Login {
                user,
                password,
                tls,
            } => self.login(user, password, tls),
            Request::BindPassive => self.bind_passive(),
            Request::PassiveSpare => self.passive_spare(),
            Request::ConnectActive(target) => self.connect_active(target),
            Request::StandIn(kind) => self.stand_in(kind),
            Request::Sign { scheme, message } => self.sign(scheme, &message),
            Request::ChownUpload => self.chown_upload(fd),
            Request::Event(Event::Protocol { input, line }) if peer == Peer::Prelogin => {
                self.records.prelogin_protocol(input, &line);
            }
            Request::Event(event) => {
                if !self.records.event(event) {
                    self.violation = Some("the worker reported its start twice".into());
                }
            }
        }
    }

    /// Send a reply to `peer`; a peer that cannot take it has gone.
    fn reply(&mut self, peer: Peer, reply: &Reply, fd: Option<std::os::fd::BorrowedFd<'_>>) {
        let Some(channel) = self.channel(peer) else {
            return;
        };
        if let Err(e) = sys::send_message(channel.as_fd(), &reply.encode(), fd) {
            tracing::debug!(error = %e, ?peer, "child gone before its reply");
            self.gone(peer);
        }
    }

    /// The pre-login process closed its channel while the worker goes on: collect its exit
    /// status now (it is exiting; waiting at most a few milliseconds), so no zombie lingers.
    fn reap_prelogin_soon(&mut self) {
        use nix::sys::wait::WaitPidFlag;
        let Some(pid) = self.prelogin.pid else { return };
        for _ in 0..50 {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR) => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                _ => {
                    self.prelogin.pid = None;
                    return;
                }
            }
        }
    }

    /// Read and drop whatever the children sent and nobody will answer, so that closing the
    /// channels does not turn the replies already sent into a reset on their side.
    fn drain_channels(&self) {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let worker = self.worker.as_ref().and_then(|w| w.channel.as_ref());
        for channel in [self.prelogin.channel.as_ref(), worker]
            .into_iter()
            .flatten()
        {
            let nonblocking = nix::fcntl::fcntl(
                channel,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
            if nonblocking.is_err() {
                continue;
            }
            for _ in 0..64 {
                match sys::recv_message(channel.as_fd(), &mut buf) {
                    Ok((n, _)) if n > 0 => continue,
                    _ => break,
                }
            }
        }
    }

    fn kill_children(&mut self) {
        for pid in [self.prelogin.pid, self.worker.as_ref().and_then(|w| w.pid)]
            .into_iter()
            .flatten()
        {
            let _ = kill(pid, Signal::SIGKILL);
        }
        self.prelogin.channel = None;
        if let Some(w) = &mut self.worker {
            w.channel = None;
        }
    }

    /// Reap both children, close PAM, and say how the session ended.
    fn finish(mut self) -> (ExitReason, u32) {
        let client = self.setup.addresses.client;
        if let Some(why) = &self.violation {
            tracing::error!(client = %client.ip(), port = client.port(), reason = %why,
                "a session process broke the monitor protocol; ending the session");
            self.drain_channels();
            self.kill_children();
        }
        self.passive = None;
        self.spare = None;
        let prelogin = self
            .prelogin
            .pid
            .map(|pid| reap_reporting_seccomp(pid, "pre-login process", client));
        let worker = self
            .worker
            .as_ref()
            .and_then(|w| w.pid)
            .map(|pid| reap_reporting_seccomp(pid, "worker", client));
        for (role, status) in [("pre-login process", &prelogin), ("worker", &worker)] {
            if let Some(Ok(WaitStatus::Signaled(_, signal, _))) = status
                && *signal != Signal::SIGSYS
                && self.violation.is_none()
            {
                tracing::warn!(client = %client.ip(), port = client.port(), signal = %signal,
                    "{role} killed by a signal");
            }
        }
        if let Some(pam) = self.pam.take() {
            pam.close();
        }
        let reason = if self.phase == Phase::LoginsExhausted && self.session_limit_reached {
            ExitReason::Refused
        } else if self.phase == Phase::LoginsExhausted {
            ExitReason::LoginFailures
        } else if self.violation.is_some() {
            ExitReason::Error
        } else {
            match worker.or(prelogin) {
                Some(Ok(WaitStatus::Exited(_, code))) => {
                    ExitReason::from_code(code).unwrap_or(ExitReason::Error)
                }
                Some(Ok(WaitStatus::Signaled(..))) => ExitReason::Error,
                None => ExitReason::Closed,
                Some(other) => {
                    tracing::error!(status = ?other, "unexpected session process status");
                    ExitReason::Error
                }
            }
        };
        self.records.ended(reason.describe(), self.failures);
        (reason, self.failures)
    }
}

/// [`reap`], first saying so when the child was killed by its seccomp filter (`SIGSYS`): the
/// system call is looked up while the child can still be found (ended, not yet reaped).
fn reap_reporting_seccomp(
    pid: Pid,
    role: &str,
    client: std::net::SocketAddr,
) -> nix::Result<WaitStatus> {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    let peeked = loop {
        match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other,
        }
    };
    if let Ok(WaitStatus::Signaled(_, Signal::SIGSYS, _)) = peeked {
        let syscall = crate::monitor::seccomp_kill::describe_kill(
            crate::monitor::seccomp_kill::global_pid(pid),
        );
        tracing::error!(client = %client.ip(), port = client.port(), %syscall,
            "session ended: the {role} was killed by its seccomp filter (SIGSYS) for a system call outside its allow-list");
    }
    reap(pid)
}

fn reap(pid: Pid) -> nix::Result<WaitStatus> {
    loop {
        match waitpid(pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => return other,
        }
    }
}
