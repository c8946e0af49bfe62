//! The spawner's one fork per accepted connection: the session's cgroup and PID namespace
//! first, its claim channel, then the fork, after which the child — the session's monitor —
//! sheds everything of the spawner's before it runs (`crate::monitor::run`).
//!
//! SECURITY: a forked monitor must hold nothing that reaches the master or another session:
//! not the master's channel, not the signalfd, not another session's claim channel; and a
//! session whose cgroup or PID namespace cannot be made is not started (fail closed).

use std::os::fd::{AsFd, OwnedFd};

use nix::sys::signal::{SigmaskHow, sigprocmask};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

use super::{MONITOR_NAME, Session, Spawner, cgroup};
use crate::monitor::{self, Handover};
use crate::protocol::spawner::Report;
use crate::sys::{self, Forked};

impl Spawner {
    /// Fork a session process for `client` (`carried`: the client address a trusted load
    /// balancer's PROXY header named, read by the master).
    pub(super) fn spawn(
        &mut self,
        id: u64,
        client: OwnedFd,
        carried: Option<std::net::SocketAddr>,
    ) {
        let cgroup = match self.cgroups.as_ref().map(|c| c.create(id)) {
            None => None,
            Some(Ok(dir)) => Some(dir),
            Some(Err(e)) => {
                tracing::error!(error = %e, "spawner: cannot make the session's cgroup; not starting it");
                drop(client);
                self.report(Report::NotStarted { id });
                return;
            }
        };
        let not_started = |spawner: &mut Spawner, cgroup: Option<cgroup::SessionCgroup>| {
            if let (Some(cgroups), Some(dir)) = (&mut spawner.cgroups, cgroup) {
                cgroups.remove(dir);
            }
            spawner.report(Report::NotStarted { id });
        };
        // SECURITY: the monitor is process 1 of a new PID namespace (isolate).
        if let Some(pids) = &self.template.pid_namespaces
            && let Err(e) = pids.next_child_in_new()
        {
            tracing::error!(error = %e, "spawner: cannot make a PID namespace; not starting the session");
            drop(client);
            not_started(self, cgroup);
            return;
        }
        let (claims, session_claims) = match socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        ) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::error!(error = %e, "spawner: no claim channel; not starting the session");
                drop(client);
                if let Some(pids) = &self.template.pid_namespaces {
                    let _ = pids.restore();
                }
                not_started(self, cgroup);
                return;
            }
        };
        let forked = sys::fork_single_threaded();
        if let (Some(pids), Ok(Forked::Parent(_)) | Err(_)) =
            (&self.template.pid_namespaces, &forked)
            && let Err(e) = pids.restore()
        {
            // The next unshare fails and says so; sessions already started are unaffected.
            tracing::error!(error = %e, "spawner: cannot return to its own PID namespace");
        }
        match forked {
            Ok(Forked::Child) => {
                // The session must hold nothing of the spawner's: not the master's channel, not
                // the signalfd, not the blocked SIGCHLD.
                self.channel = None;
                self.children_signal = None;
                // SECURITY: a session holds its own claim channel and no other session's
                // (it could claim logins in their name otherwise).
                self.children.clear();
                drop(claims);
                self.tallies = None;
                if let Some(sender) = self.template.tally_sender.as_ref() {
                    match sender.try_clone() {
                        Ok(copy) => monitor::tally::install(copy),
                        Err(e) => tracing::warn!(error = %e, "no metrics counts for this session"),
                    }
                }
                let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.original_mask), None);
                // SECURITY: nor the spawner's tokio signal sockets (every session would share
                // them): a pair of its own at the same numbers (`sys::runtime_signals`).
                if let Err(e) = crate::sys::runtime_signals::renew() {
                    tracing::error!(error = %e, "session: cannot renew the runtime's signal sockets");
                    std::process::exit(1);
                }
                // Each FTP session is a session of its own, as sshd makes each login one: no
                // controlling terminal or process group shared with the server, and with the
                // kernel's autogroup scheduling (on by default) the CPU is shared between
                // sessions rather than all of them competing as one group against the host.
                if let Err(e) = nix::unistd::setsid() {
                    tracing::warn!(error = %e, "session: setsid failed; it shares the spawner's session");
                }
                let _ = nix::sys::prctl::set_name(MONITOR_NAME);
                let template = &self.template;
                let code = monitor::run(
                    &template.config,
                    &template.users,
                    Handover {
                        banner: &template.banner,
                        empty_net: template.empty_net.as_ref().map(|f| f.as_fd()),
                        proxied_client: carried,
                        cgroup: cgroup.as_ref(),
                        claims: Some(session_claims.as_fd()),
                    },
                    std::net::TcpStream::from(client),
                );
                std::process::exit(i32::from(code));
            }
            Ok(Forked::Parent(pid)) => {
                drop(client);
                drop(session_claims);
                let session = Session {
                    id,
                    cgroup,
                    claims: Some(claims),
                    claimed: false,
                };
                self.children.insert(pid, session);
                self.report(Report::Started {
                    id,
                    pid: pid.as_raw() as u32,
                });
            }
            Err(e) => {
                tracing::error!(error = %e, "spawner: cannot fork a session");
                drop(client);
                not_started(self, cgroup);
            }
        }
    }
}
