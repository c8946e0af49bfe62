//! The session spawner: a single-threaded root process the master fork+execs once (and again
//! on each reload), which starts one session process (the monitor) per accepted connection —
//! forked by its template process (`template`), re-parented to the spawner, reaped here.
//!
//! Why it exists: a session forked from an already running process shares that process's
//! relocated binary, libraries and parsed configuration copy-on-write, where an exec per
//! connection rebuilt all of them in every session (about 250 KiB each). The master itself
//! cannot fork — it is multi-threaded — so this process, exec'd with exactly the configuration
//! the master validated, forks for it (once: the template, whose memory never changes).
//!
//! It reads orders from the master on fd 0 (a `SOCK_SEQPACKET` socket; see [`protocol`]),
//! reaps its sessions and reports how each ended. Each session's monitor has a channel of its
//! own to the spawner, for one thing: claiming its login (`max_per_user`), which the spawner
//! checks, passes to the master, and whose answer it passes back. It never reads from a client socket: the
//! socket goes straight to the forked session. It trusts only its parent, the master; when the
//! master goes away or retires it, it starts nothing more and exits after its last session.

pub mod cgroup;
mod claims;
mod fork;
mod template;

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, recv, socketpair};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::config::Config;

use crate::policy::UserList;
use crate::protocol::spawner::{MAX_RECORD, Order, ProcessEnd, Report};
use crate::protocol::tally::{TALLY_LEN, Tally};
use crate::sys;

/// Process names (`comm`, what `ps -o comm` and `pgrep` see) of the spawner and of the two
/// processes of each session.
pub const SPAWNER_NAME: &std::ffi::CStr = c"rftpd-spawner";
pub const MONITOR_NAME: &std::ffi::CStr = c"rftpd-monitor";

/// Exit codes of the spawner itself.
const EXIT_OK: u8 = 0;
const EXIT_SETUP_FAILED: u8 = 1;

/// What every session forked from here starts with.
struct SessionTemplate {
    config: Config,
    users: UserList,
    banner: String,
    /// The network namespace pre-login processes enter (close-on-exec; root's).
    empty_net: Option<OwnedFd>,
    /// Each session in a new PID namespace (`isolate`).
    pid_namespaces: Option<crate::jail::sandbox::PidNamespaces>,
    /// The sending end of the monitors' metrics counts (`metrics_enable`; close-on-exec).
    tally_sender: Option<OwnedFd>,
}

/// Entry point of `rftpd spawner`: serve the master's orders until it retires us or goes
/// away and every session has ended.
pub fn run(config: Config, user_list: String, banner: String) -> u8 {
    let channel = match sys::take_stdin_socket(SockType::SeqPacket).and_then(move_off_stdin) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the spawner is started by the rftpd master only");
            return EXIT_SETUP_FAILED;
        }
    };
    let _ = nix::sys::prctl::set_name(SPAWNER_NAME);
    // tokio's signal registry, built once here and shared by every session's runtime; first,
    // while the heap has no holes, so that it fills pages of its own that no session writes.
    if let Err(e) = sys::runtime_signals::preload() {
        tracing::error!(error = %e, "cannot preload the runtime's signal state");
        return EXIT_SETUP_FAILED;
    }
    // SIGCHLD arrives through a signalfd, so one poll() waits for orders and ended sessions.
    let mut sigchld = SigSet::empty();
    sigchld.add(Signal::SIGCHLD);
    let mut original_mask = SigSet::empty();
    if let Err(e) = sigprocmask(
        SigmaskHow::SIG_BLOCK,
        Some(&sigchld),
        Some(&mut original_mask),
    ) {
        tracing::error!(error = %e, "cannot block SIGCHLD");
        return EXIT_SETUP_FAILED;
    }
    let children_signal =
        match SignalFd::with_flags(&sigchld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
            Ok(fd) => fd,
            Err(e) => {
                tracing::error!(error = %e, "cannot create a signalfd");
                return EXIT_SETUP_FAILED;
            }
        };
    let users = UserList::new(&config, &user_list);
    sys::use_one_malloc_arena();
    let preloaded = preload_libraries(&config);
    // One empty network namespace for every pre-login process (see `jail::nopriv`).
    let empty_net = match crate::jail::netns::empty_namespace() {
        Ok(fd) => Some(fd),
        Err(e) => {
            tracing::warn!(error = %e, "no shared empty network namespace; each pre-login process makes its own");
            None
        }
    };
    let pid_namespaces = if config.isolate {
        match crate::jail::sandbox::PidNamespaces::open() {
            Ok(p) => Some(p),
            Err(e) => {
                // SECURITY: isolate = true is not quietly dropped: no session starts.
                tracing::error!(error = %e, "cannot open the spawner's PID namespace (isolate)");
                return EXIT_SETUP_FAILED;
            }
        }
    } else {
        None
    };
    let cgroups = cgroup::SessionCgroups::find(&config);
    let (tallies, tally_sender) = if config.metrics_enable {
        match socketpair(
            AddressFamily::Unix,
            SockType::Datagram,
            None,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        ) {
            Ok((rx, tx)) => (Some(rx), Some(tx)),
            Err(e) => {
                tracing::error!(error = %e, "spawner: no channel for the metrics counts");
                return EXIT_SETUP_FAILED;
            }
        }
    } else {
        (None, None)
    };
    let template = SessionTemplate {
        config,
        users,
        banner,
        empty_net,
        pid_namespaces,
        tally_sender,
    };
    let mut spawner = Spawner {
        template,
        channel: Some(channel),
        children_signal: Some(children_signal),
        tallies,
        children: HashMap::new(),
        pending: HashMap::new(),
        template_process: None,
        cgroups,
        retired: false,
        original_mask,
        _preloaded: preloaded,
    };
    // Every monitor is forked by the template's intermediate process and handed to us when
    // that exits: without this the spawner could not reap or count them (fail closed).
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::error!(error = %e, "cannot make the spawner a child subreaper");
        return EXIT_SETUP_FAILED;
    }
    // Last, so that it holds the spawner's memory as complete as it will be for sessions.
    match spawner.start_template() {
        Ok(t) => spawner.template_process = Some(t),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the template process");
            return EXIT_SETUP_FAILED;
        }
    }
    let code = spawner.serve();
    spawner.stop_template();
    code
}

/// Move the master's channel from fd 0 to a close-on-exec descriptor above 2 and put
/// `/dev/null` on fd 0, so that nothing a session runs (a `pam_exec` program) finds a socket —
/// or a closed slot that its next open() would take — where it expects stdin.
fn move_off_stdin(channel: OwnedFd) -> std::io::Result<OwnedFd> {
    let moved = channel.try_clone()?;
    let null = std::fs::File::open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    // The OwnedFd for fd 0 is now /dev/null's; it must stay open, so it is not dropped.
    std::mem::forget(channel);
    Ok(moved)
}

struct Spawner {
    template: SessionTemplate,
    /// `None` once the master has gone away.
    channel: Option<OwnedFd>,
    /// SIGCHLD as a descriptor; `None` only in a forked session.
    children_signal: Option<SignalFd>,
    /// The receiving end of the monitors' metrics counts (`metrics_enable`); `None` in a
    /// forked session.
    tallies: Option<OwnedFd>,
    /// Running sessions, by the monitor's pid.
    children: HashMap<Pid, Session>,
    /// Sessions handed to the template process that it has not reported yet, by id.
    pending: HashMap<u64, Session>,
    /// The process that forks the monitors (`template`); `None` in the processes it forks,
    /// and while none could be started.
    template_process: Option<template::Template>,
    /// Where session cgroups are made (a delegated cgroup v2 subtree, and on a hybrid host the
    /// service's v1 cgroups), if anywhere.
    cgroups: Option<cgroup::SessionCgroups>,
    retired: bool,
    /// The signal mask to give back to forked sessions.
    original_mask: SigSet,
    /// Kept for the spawner's life; a forked session never ends it (it exits without
    /// running destructors).
    _preloaded: Option<crate::auth::PreloadedModules>,
}

/// Load, once, the shared libraries every session loads at login — the PAM service's modules
/// and the NSS modules behind user and group lookups — so that forked sessions share their
/// relocated pages (about 150 KiB per session otherwise). Failing here only costs memory:
/// sessions load what they need themselves.
fn preload_libraries(config: &Config) -> Option<crate::auth::PreloadedModules> {
    // initgroups-style lookups walk every `group` source of nsswitch.conf, loading its modules.
    let _ = nix::unistd::User::from_name("root");
    let _ = nix::unistd::getgrouplist(c"root", nix::unistd::Gid::from_raw(0));
    if config.use_localtime {
        // The time zone, read once here (`TZ` or /etc/localtime): every session inherits it.
        let _ = crate::sys::utc_offset(0);
    }
    if !config.local_enable {
        return None;
    }
    match crate::auth::preload_modules(&config.pam_service_name) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(error = %e, "cannot preload the PAM modules; sessions load their own");
            None
        }
    }
}

/// One running session, as the spawner sees it.
struct Session {
    /// The master's id for it.
    id: u64,
    cgroup: Option<cgroup::SessionCgroup>,
    /// The spawner's end of the monitor's claim channel; `None` once the monitor closed it.
    claims: Option<OwnedFd>,
    /// It has sent its one claim.
    claimed: bool,
}

impl Spawner {
    fn serve(&mut self) -> u8 {
        let mut buf = [0u8; MAX_RECORD + 1];
        loop {
            let accepting = self.channel.is_some() && !self.retired;
            if !accepting && self.children.is_empty() && self.pending.is_empty() {
                tracing::debug!("spawner: no sessions left; exiting");
                return EXIT_OK;
            }
            if accepting && self.template_process.is_none() {
                // The last template died and no new one could be started then. Only here,
                // where no client socket is in scope for the new template to inherit.
                match self.start_template() {
                    Ok(t) => self.template_process = Some(t),
                    Err(e) => {
                        tracing::error!(error = %e, "spawner: cannot start a template process")
                    }
                }
            }
            let Some(children_signal) = &self.children_signal else {
                return EXIT_SETUP_FAILED;
            };
            let claimants: Vec<Pid> = self
                .children
                .iter()
                .filter(|(_, c)| c.claims.is_some())
                .map(|(pid, _)| *pid)
                .collect();
            let (child_ready, order_ready, tally_ready, template_ready, claims_ready) = {
                let mut fds = vec![PollFd::new(children_signal.as_fd(), PollFlags::POLLIN)];
                let tally_at = self.tallies.as_ref().map(|t| {
                    fds.push(PollFd::new(t.as_fd(), PollFlags::POLLIN));
                    fds.len() - 1
                });
                let order_at = self.channel.as_ref().map(|channel| {
                    fds.push(PollFd::new(channel.as_fd(), PollFlags::POLLIN));
                    fds.len() - 1
                });
                let template_at = self.template_process.as_ref().map(|t| {
                    fds.push(PollFd::new(t.channel.as_fd(), PollFlags::POLLIN));
                    fds.len() - 1
                });
                let first_claim = fds.len();
                for pid in &claimants {
                    if let Some(fd) = self.children.get(pid).and_then(|c| c.claims.as_ref()) {
                        fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    }
                }
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        tracing::error!(error = %e, "spawner: poll failed");
                        return EXIT_SETUP_FAILED;
                    }
                }
                let revents = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
                let ready = |at: Option<usize>| at.and_then(|i| fds.get(i)).is_some_and(revents);
                let claims_ready: Vec<Pid> = claimants
                    .iter()
                    .zip(&fds[first_claim..])
                    .filter(|(_, fd)| revents(fd))
                    .map(|(pid, _)| *pid)
                    .collect();
                (
                    ready(Some(0)),
                    ready(order_at),
                    ready(tally_at),
                    ready(template_at),
                    claims_ready,
                )
            };
            // Before reaping: a monitor is ours to reap only after its intermediate process
            // exited, which it does after reporting the monitor's pid.
            if template_ready || child_ready {
                self.take_template_reports();
            }
            if child_ready {
                // Drain the signalfd, then reap everything that has ended (signals coalesce).
                while let Ok(Some(_)) = self
                    .children_signal
                    .as_ref()
                    .map_or(Ok(None), |s| s.read_signal())
                {}
                // A session's last counts before its end.
                self.pass_on_tallies();
                self.reap();
            }
            if order_ready {
                self.take_order(&mut buf);
            }
            if tally_ready && !child_ready {
                self.pass_on_tallies();
            }
            for pid in claims_ready {
                self.take_claim(pid);
            }
        }
    }

    /// Reap every ended session and report it.
    fn reap(&mut self) {
        loop {
            let status = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "spawner: waitpid failed");
                    return;
                }
                Ok(s) => s,
            };
            let (pid, end) = match status {
                WaitStatus::Exited(pid, code) => (pid, ProcessEnd::Exited(code as u8)),
                WaitStatus::Signaled(pid, signal, _) => (pid, ProcessEnd::Killed(signal as i32)),
                _ => continue,
            };
            if self.template_process.as_ref().is_some_and(|t| t.pid == pid) {
                self.template_ended(end);
            } else if let Some(session) = self.children.remove(&pid) {
                // Process 1 of the session's PID namespace has gone, so has everything else.
                if let (Some(cgroups), Some(dir)) = (&mut self.cgroups, session.cgroup) {
                    cgroups.remove(dir);
                }
                self.report(Report::Ended {
                    id: session.id,
                    end,
                });
            }
        }
    }

    /// Pass the monitors' counts on to the master: at most a bounded batch per wake-up, so
    /// orders and ended sessions are never starved.
    fn pass_on_tallies(&mut self) {
        const BATCH: usize = 256;
        let mut buf = [0u8; TALLY_LEN + 1];
        for _ in 0..BATCH {
            let Some(tallies) = &self.tallies else { return };
            use std::os::fd::AsRawFd;
            match recv(tallies.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(len) => match Tally::decode(&buf[..len]) {
                    Ok(tally) => self.report(Report::Tally(tally)),
                    // Only monitors hold the sending end; a bad record is a bug, not an attack.
                    Err(e) => {
                        tracing::warn!(error = %e, "spawner: a malformed metrics count dropped")
                    }
                },
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
        }
    }

    /// Send a report; a master that has gone away just stops getting them.
    fn report(&mut self, report: Report) {
        if let Some(channel) = &self.channel
            && let Err(e) = sys::send_message(channel.as_fd(), &report.encode(), None)
        {
            tracing::debug!(error = %e, "spawner: the master is gone");
            self.channel = None;
        }
    }

    /// Read one order from the master and carry it out.
    fn take_order(&mut self, buf: &mut [u8]) {
        let Some(channel) = &self.channel else { return };
        let received = sys::recv_message(channel.as_fd(), buf);
        let (len, client) = match received {
            Ok((0, _)) => {
                tracing::debug!(
                    "spawner: the master closed its end; finishing the running sessions"
                );
                self.channel = None;
                return;
            }
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(nix::libc::EINTR) => return,
            Err(e) => {
                tracing::error!(error = %e, "spawner: bad message from the master; starting no more sessions");
                self.channel = None;
                return;
            }
        };
        match (Order::decode(&buf[..len]), client) {
            (
                Ok(Order::Spawn {
                    id,
                    client: carried,
                }),
                Some(client),
            ) if !self.retired => self.spawn(id, client, carried),
            (Ok(Order::Spawn { id, .. }), _) => {
                tracing::error!(
                    id,
                    "spawner: a spawn order without a client socket, or after retiring"
                );
                self.report(Report::NotStarted { id });
            }
            (Ok(Order::Retire), None) => {
                tracing::debug!(sessions = self.children.len(), "spawner retired");
                self.retired = true;
            }
            (Ok(Order::Answer { id, granted }), None) => self.answer_claim(id, granted),
            (Ok(Order::Retire | Order::Answer { .. }), Some(_)) | (Err(_), _) => {
                tracing::error!("spawner: malformed order from the master; ignored");
            }
        }
    }
}
