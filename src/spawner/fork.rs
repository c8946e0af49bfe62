//! The spawner's part of starting a session for an accepted connection: the session's cgroup
//! and its claim channel, then the order to the template process (`template`), which forks
//! the monitor; and what the template reports back.
//!
//! SECURITY: a session whose cgroup cannot be made is not started (fail closed); the spawner
//! passes the template only the client socket and that session's own end of its claim
//! channel, and believes a report of a started session only for a session it ordered.

use std::os::fd::{AsFd, OwnedFd};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::unistd::Pid;

use super::{Session, Spawner, cgroup};
use crate::protocol::spawner::{MAX_RECORD, Order, Report};
use crate::sys;

impl Spawner {
    /// Start a session process for `client` (`carried`: the client address a trusted load
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
                self.not_started(id, cgroup);
                return;
            }
        };
        let sent = match &self.template_process {
            Some(template) => sys::send_message_fds(
                template.channel.as_fd(),
                &Order::Spawn {
                    id,
                    client: carried,
                }
                .encode(),
                &[client.as_fd(), session_claims.as_fd()],
            ),
            None => Err(std::io::Error::other("no template process")),
        };
        drop(client);
        drop(session_claims);
        match sent {
            Ok(()) => {
                self.pending.insert(
                    id,
                    Session {
                        id,
                        cgroup,
                        claims: Some(claims),
                        claimed: false,
                    },
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "spawner: cannot hand the session to the template process");
                self.not_started(id, cgroup);
            }
        }
    }

    fn not_started(&mut self, id: u64, cgroup: Option<cgroup::SessionCgroup>) {
        if let (Some(cgroups), Some(dir)) = (&mut self.cgroups, cgroup) {
            cgroups.remove(dir);
        }
        self.report(Report::NotStarted { id });
    }

    /// Read every report the template process (or one of its intermediate processes) has
    /// sent: a started session joins the table of running ones.
    pub(super) fn take_template_reports(&mut self) {
        let mut buf = [0u8; MAX_RECORD + 1];
        // Bounded: at most one report per session ordered, and those are in `pending`.
        for _ in 0..=self.pending.len() {
            let Some(template) = &self.template_process else {
                return;
            };
            let len = match sys::recv_message(template.channel.as_fd(), &mut buf) {
                Ok((0, _)) => return,
                Ok((len, None)) => len,
                Ok((_, Some(_))) => {
                    tracing::error!("spawner: the template process sent a descriptor; ignored");
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::error!(error = %e, "spawner: cannot read the template process's reports");
                    return;
                }
            };
            match Report::decode(&buf[..len]) {
                Ok(Report::Started { id, pid }) => match self.pending.remove(&id) {
                    Some(session) => {
                        self.children.insert(Pid::from_raw(pid as i32), session);
                        self.report(Report::Started { id, pid });
                    }
                    None => tracing::error!(id, "spawner: a report for a session never ordered"),
                },
                Ok(Report::NotStarted { id }) => match self.pending.remove(&id) {
                    Some(session) => self.not_started(id, session.cgroup),
                    None => tracing::error!(id, "spawner: a report for a session never ordered"),
                },
                _ => tracing::error!("spawner: malformed report from the template process"),
            }
        }
    }

    /// The template process ended (`end`): sessions it did not report are not started; a new
    /// template takes over (forked by the serve loop) unless the spawner is finishing.
    pub(super) fn template_ended(&mut self, end: crate::protocol::spawner::ProcessEnd) {
        self.take_template_reports();
        let lost: Vec<u64> = self.pending.keys().copied().collect();
        for id in lost {
            if let Some(session) = self.pending.remove(&id) {
                self.not_started(id, session.cgroup);
            }
        }
        self.template_process = None;
        if !self.retired && self.channel.is_some() {
            // The serve loop forks a new one before it waits again.
            tracing::error!(
                ?end,
                "spawner: the template process ended; starting a new one"
            );
        }
    }
}
