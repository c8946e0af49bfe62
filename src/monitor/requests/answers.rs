//! The monitor's answers to the requests its table allows: a login (PAM and policy, the
//! failure count and delay, the worker's fork), a handshake signature, a passive socket, an
//! active connection. Root, one thread; every argument comes from a process that may be
//! compromised and was decoded and checked against the table before it got here.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

use super::{EXHAUSTED_GRACE, MAX_SIGNATURES, Monitor, Peer, Phase, chown};
use crate::control::port;
use crate::monitor::standin::WorkerNetwork;
use crate::monitor::{Child, WORKER_NAME, active, login};
use crate::protocol::ExitReason;
use crate::protocol::monitor::{Reply, StandInSocket};
use crate::sys::{self, Forked};

/// Why a login was refused.
enum Refusal {
    /// Policy, PAM, the account, the user's file: counted as a failed login, `530`.
    Login(String),
    /// `max_per_user` (or no answer from the master): `421`, and the session ends.
    TooMany(String),
}

/// How long the monitor waits for the master's answer to a login claim.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(10);

impl Monitor<'_> {
    /// Claim this session's login under `name` with the master, through the spawner
    /// (`max_per_user`). No claim channel (the probe): nothing to count.
    ///
    /// SECURITY: fails closed: no answer in time, or a broken channel, refuses the login.
    fn claim(&self, name: &str) -> Result<(), Refusal> {
        use crate::protocol::spawner::{CLAIM_GRANTED, ClaimName, encode_claim};
        let Some(channel) = self.setup.claims else {
            return Ok(());
        };
        let refused = |why: &str| Err(Refusal::TooMany(why.to_owned()));
        let Some(name) = ClaimName::new(name) else {
            return refused(
                "max_per_user: the login name cannot be counted (not a plain name of at most 32 bytes)",
            );
        };
        if sys::send_message(channel, &encode_claim(&name), None).is_err() {
            return refused("max_per_user: the spawner cannot be asked");
        }
        let deadline = Instant::now() + CLAIM_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return refused("max_per_user: no answer from the master");
            }
            let mut fds = [nix::poll::PollFd::new(
                channel,
                nix::poll::PollFlags::POLLIN,
            )];
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => break,
                Err(_) => return refused("max_per_user: the spawner's channel failed"),
            }
        }
        let mut answer = [0u8; 2];
        match sys::recv_message(channel, &mut answer) {
            Ok((1, None)) if answer[0] == CLAIM_GRANTED => Ok(()),
            Ok((1, None)) => refused("max_per_user reached"),
            _ => refused("max_per_user: a bad answer from the spawner"),
        }
    }

    /// Sign one message of the control connection's TLS handshake.
    pub(super) fn sign(&mut self, scheme: u16, message: &[u8]) {
        self.signatures += 1;
        if self.signatures > MAX_SIGNATURES {
            self.violation = Some("too many handshake signatures requested".into());
            return;
        }
        if self.key.is_none()
            && let Some(files) = self.tls_files()
        {
            match files.signing_key() {
                Ok(key) => self.key = Some(key),
                Err(e) => tracing::error!("TLS: {e}"),
            }
        }
        let signature = self
            .key
            .as_ref()
            .and_then(|key| key.choose_scheme(&[rustls::SignatureScheme::from(scheme)]))
            .and_then(|signer| signer.sign(message).ok());
        match signature {
            Some(signature) => {
                self.tls_seen = true;
                self.reply(Peer::Prelogin, &Reply::Signature(signature), None);
            }
            None => {
                tracing::warn!(
                    scheme,
                    "refused to sign a handshake with a scheme the key lacks"
                );
                self.reply(Peer::Prelogin, &Reply::NotSigned, None);
            }
        }
    }

    pub(super) fn login(&mut self, user: String, mut password: Vec<u8>, tls: bool) {
        let started = Instant::now();
        let config = self.setup.config;
        let client = self.setup.addresses.client;
        // SECURITY: the control connection counts as encrypted only if the monitor itself
        // signed its TLS handshake (the pre-login process never holds the key); the pre-login
        // process's word alone is not enough.
        if tls && !self.tls_seen {
            tracing::warn!(client = %client.ip(), port = client.port(),
                "the pre-login process claims TLS without a handshake the monitor signed");
        }
        let attempt = login::Attempt {
            user: &user,
            password: &password,
            client: client.ip(),
            tls: tls && self.tls_seen,
        };
        let outcome = login::decide(config, self.setup.users, &attempt).map_err(Refusal::Login);
        // An anonymous login's "password" is an e-mail address, which vsftpd logs; nothing
        // of any other password is kept.
        let anon_password = match &outcome {
            Ok(a) if a.anonymous_login => password.clone(),
            _ => Vec::new(),
        };
        password.iter_mut().for_each(|b| *b = 0);
        // max_per_user: the master counts the login, or refuses it (421, session ended).
        let outcome = outcome.and_then(|accepted| match self.claim(&accepted.counted_name) {
            Ok(()) => Ok(accepted),
            Err(refusal) => {
                if let Some(pam) = accepted.pam {
                    pam.close();
                }
                Err(refusal)
            }
        });
        match outcome {
            Err(Refusal::TooMany(reason)) => {
                self.records.session_refused(&user, &reason);
                self.session_limit_reached = true;
                self.phase = Phase::LoginsExhausted;
                self.kill_at = Some(Instant::now() + EXHAUSTED_GRACE);
                self.reply(Peer::Prelogin, &Reply::TooManySessions, None);
            }
            Ok(accepted) => {
                // "login ok" is logged when the worker says it started (it may still refuse
                // a writable jail root).
                self.records
                    .login_accepted(&user, &accepted.grant, &anon_password);
                match chown::AnonymousUploads::for_login(
                    config,
                    &accepted.grant,
                    &accepted.start_dir,
                ) {
                    Ok(uploads) => self.anonymous_uploads = uploads,
                    Err(e) => {
                        self.violation = Some(format!("cannot stat the jail (chown_uploads): {e}"));
                        return;
                    }
                }
                // The worker is forked from here: PAM's freed heap and its deep stack must be
                // given back first, or the worker inherits them and keeps them (as its private
                // pages once this process has dropped its copy).
                sys::release_free_heap();
                sys::discard_stack_below_caller();
                match self.start_worker(accepted) {
                    Ok(link) => {
                        self.phase = Phase::LoggedIn;
                        self.reply(Peer::Prelogin, &Reply::LoggedIn, Some(link.as_fd()));
                    }
                    Err(e) => {
                        self.violation = Some(format!("cannot start the user's worker: {e}"));
                    }
                }
            }
            Err(Refusal::Login(reason)) => {
                self.failures += 1;
                self.records.login_refused(&user, &reason);
                // SECURITY: the same wait whatever the reason (unknown user, wrong password,
                // policy), counted from the request, not from PAM's answer.
                let delay = Duration::from_secs(config.delay_failed_login);
                std::thread::sleep((started + delay).saturating_duration_since(Instant::now()));
                let disconnect =
                    config.max_login_fails > 0 && self.failures >= config.max_login_fails;
                if disconnect {
                    self.phase = Phase::LoginsExhausted;
                    self.kill_at = Some(Instant::now() + EXHAUSTED_GRACE);
                }
                self.reply(Peer::Prelogin, &Reply::Denied { disconnect }, None);
            }
        }
        // PAM and the password hash ran deep and allocated a lot; none of it is needed
        // again (and the discarded stack held the password for a moment).
        sys::release_free_heap();
        sys::discard_stack_below_caller();
    }

    /// Fork the worker for an accepted login; returns the pre-login process's end of the link.
    pub(super) fn start_worker(&mut self, accepted: login::Accepted) -> std::io::Result<OwnedFd> {
        let (link_prelogin, link_worker) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        let (monitor_end, worker_end) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        let parent = nix::unistd::getpid();
        let tls_files = self.tls_files().cloned();
        // SECURITY: the monitor makes the worker's network namespace and keeps its handle, so
        // every stand-in socket it makes later lands there and nowhere else.
        let network = WorkerNetwork::make(self.setup.addresses.client.ip())?;
        let worker_namespace = network.namespace().try_clone()?;
        match sys::fork_single_threaded()? {
            Forked::Child => {
                let _ = nix::sys::prctl::set_name(WORKER_NAME);
                // SECURITY: the runtime's signal sockets are the worker's own, not the monitor's
                // (`sys::runtime_signals`); without them it stops here.
                let Ok(mut keep) = sys::runtime_signals::renew() else {
                    std::process::abort();
                };
                keep.extend([
                    link_worker.as_raw_fd(),
                    worker_end.as_raw_fd(),
                    accepted.start_dir.as_raw_fd(),
                    worker_namespace.as_raw_fd(),
                ]);
                // SECURITY: the worker holds nothing of the monitor's (the pre-login channel,
                // passive listeners). The monitor's objects that owned them are never dropped
                // in this process: it leaves through `exit`, whatever happens.
                if sys::close_all_fds_except(&keep).is_err() {
                    std::process::abort();
                }
                let setup = self.setup;
                // The user's user_config_dir file, if it changed anything, governs the worker.
                let config = accepted.config.as_deref().unwrap_or(setup.config);
                let start = crate::worker::Start {
                    config,
                    grant: accepted.grant,
                    dir: accepted.start_dir,
                    link: link_worker,
                    channel: worker_end,
                    network: worker_namespace,
                    addresses: setup.addresses,
                    tls_files,
                    parent,
                };
                let reason = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    crate::worker::run(start)
                }))
                .unwrap_or(ExitReason::Error);
                std::process::exit(reason as i32);
            }
            Forked::Parent(pid) => {
                drop(link_worker);
                drop(worker_end);
                drop(accepted.start_dir);
                drop(worker_namespace);
                self.worker = Some(Child {
                    pid: Some(pid),
                    channel: Some(monitor_end),
                });
                self.pam = accepted.pam;
                self.network = Some(network);
                Ok(link_prelogin)
            }
        }
    }

    pub(super) fn bind_passive(&mut self) {
        // SECURITY: one passive listener per session; asking again closes the previous one,
        // and the spare the worker held (it asks this only without a spare it can use).
        self.passive = None;
        self.spare = None;
        let addresses = self.setup.addresses;
        let (ip, client) = (addresses.local_ip, addresses.client.ip());
        match self
            .ports
            .reserve(ip, client, None)
            .and_then(|r| r.listen())
        {
            Ok(p) => {
                self.reply(Peer::Worker, &Reply::Bound, Some(p.listener()));
                // A worker gone meanwhile (the reply failed) leaves nothing listening.
                if self.worker_channel_open() {
                    self.passive = Some(p);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, address = %ip, "no passive socket");
                self.reply(Peer::Worker, &Reply::NotBound, None);
            }
        }
    }

    /// The worker took its spare for a PASV/EPSV (without a round trip: it had the socket
    /// already) and wants the next one, which it gets now, before it needs it.
    pub(super) fn passive_spare(&mut self) {
        // SECURITY: the spare becomes the session's one listener (the previous one is shut
        // down, for the worker's copy too); the new spare takes its place: a session never
        // holds more than its listener and one spare, both made here with their trap, on the
        // control connection's local address, steered to the client's address only.
        if let Some(taken) = self.spare.take() {
            self.passive = Some(taken.renewed());
        }
        let addresses = self.setup.addresses;
        let (ip, client) = (addresses.local_ip, addresses.client.ip());
        // Never on the port in use (see `PassivePorts::reserve`).
        let current = self.passive.as_ref().map(|p| p.port());
        match self
            .ports
            .reserve(ip, client, current)
            .and_then(|r| r.listen())
        {
            Ok(p) => {
                self.reply(Peer::Worker, &Reply::Bound, Some(p.listener()));
                // A worker gone meanwhile (the reply failed) leaves nothing listening.
                if self.worker_channel_open() {
                    self.spare = Some(p);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, address = %ip, "no spare passive socket");
                self.reply(Peer::Worker, &Reply::NotBound, None);
            }
        }
    }

    pub(super) fn connect_active(&mut self, target: SocketAddr) {
        let config = self.setup.config;
        let addresses = self.setup.addresses;
        // SECURITY: checked again here; the worker's relay already refused it if it obeys.
        if !config.port_enable
            || !port::allowed(target, addresses.client.ip(), config.port_promiscuous)
        {
            self.violation = Some(format!(
                "active connection to {target} that the configuration forbids"
            ));
            return;
        }
        let from_port = config.connect_from_port_20.then_some(config.ftp_data_port);
        let timeout = Duration::from_secs(config.connect_timeout.max(1));
        match active::connect(target, addresses.local_ip, from_port, timeout) {
            Ok(stream) => self.reply(Peer::Worker, &Reply::Connected, Some(stream.as_fd())),
            Err(e) => {
                tracing::info!(error = %e, address = %target, "active data connection failed");
                self.reply(Peer::Worker, &Reply::NotConnected, None);
            }
        }
    }

    pub(super) fn stand_in(&mut self, kind: StandInSocket) {
        // SECURITY: a listener only on any port or one of the session's own passive ports (its
        // listener, or the spare the worker may have just taken: libunftp names that port in
        // its 227/229 under PROT P), and only inside the worker's namespace.
        let own = |p: &Option<crate::monitor::passive::Passive>| p.as_ref().map(|p| p.port());
        if let StandInSocket::Listener { port } = kind
            && port != 0
            && own(&self.passive) != Some(port)
            && own(&self.spare) != Some(port)
        {
            self.violation = Some(format!(
                "stand-in listener on port {port}, which is not the session's passive port"
            ));
            return;
        }
        let Some(network) = &self.network else {
            self.violation = Some("stand-in socket requested before the worker exists".into());
            return;
        };
        match network.socket(kind) {
            Ok(fd) => self.reply(Peer::Worker, &Reply::StandIn, Some(fd.as_fd())),
            Err(e) => {
                tracing::warn!(error = %e, ?kind, "cannot make a stand-in socket in the worker's namespace");
                self.reply(Peer::Worker, &Reply::NoStandIn, None);
            }
        }
    }
}
