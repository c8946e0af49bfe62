//! The spawner's template process: forked once when the spawner starts (again only if it
//! dies), it makes every session's monitor and otherwise does nothing, so that it never
//! writes its memory.
//!
//! Why it exists: a session forked straight from the spawner shares the spawner's pages
//! copy-on-write, and every page the spawner writes afterwards (its session table, poll
//! vectors, malloc's bookkeeping, report buffers: 10–12 pages per session started) leaves the
//! old copy to the sessions that still share it, up to ~44 KiB more per idle session, growing
//! with the server's age. The template holds the spawner's memory as it was before the first
//! session and keeps it: its loop uses only the stack.
//!
//! Per session (an [`Order::Spawn`] with the client socket and the monitor's claim channel
//! attached): the template forks a short-lived intermediate process and waits for it; the
//! intermediate process enters the session's new PID namespace (`isolate`), forks the monitor,
//! reports the monitor's pid to the spawner ([`Report::Started`]) and exits. The monitor,
//! orphaned, is re-parented to the spawner (a child subreaper), which reaps it as before.
//! Two forks, so that the template never has a child it must track (a table would be memory
//! it writes) and the spawner stays every monitor's parent.
//!
//! SECURITY: the template is root and trusts only the spawner, whose records it still
//! decodes and checks. It holds no channel to the master, no signalfd, no session's claim
//! channel. A monitor closes the template's channel before anything else, so no session can
//! report in the template's name. Any failure to read an order ends the template; the spawner
//! then starts no session it ordered and forks a new template (fail closed).

use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{SigmaskHow, sigprocmask};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::{MONITOR_NAME, Spawner};
use crate::monitor::{self, Handover};
use crate::protocol::spawner::{MAX_RECORD, Order, Report};
use crate::sys::{self, Forked, SingleThreaded};

/// The template process's name (`comm`).
pub const TEMPLATE_NAME: &std::ffi::CStr = c"rftpd-template";

/// Exit codes of the template and of its intermediate processes.
const EXIT_DONE: i32 = 0;
const EXIT_FAILED: i32 = 1;

/// The spawner's handle on its template process.
pub(super) struct Template {
    pub pid: Pid,
    /// Orders go out, [`Report::Started`]/[`Report::NotStarted`] come back (non-blocking).
    pub channel: OwnedFd,
}

impl Spawner {
    /// Fork the template process from the spawner as it is now.
    ///
    /// SECURITY: call it only where no descriptor outside `self` is open (not while handling
    /// an order: the client socket would pass to every later session). What `self` holds
    /// that the template must not keep, it closes (`become_template`).
    pub(super) fn start_template(&mut self) -> std::io::Result<Template> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        match sys::fork_single_threaded()? {
            Forked::Child => {
                drop(ours);
                self.become_template(theirs)
            }
            Forked::Parent(pid) => {
                drop(theirs);
                let flags = fcntl(&ours, FcntlArg::F_GETFL)?;
                let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
                fcntl(&ours, FcntlArg::F_SETFL(flags))?;
                Ok(Template { pid, channel: ours })
            }
        }
    }

    /// The spawner is finishing: close the template's channel, which ends it, and reap it.
    pub(super) fn stop_template(&mut self) {
        if let Some(template) = self.template_process.take() {
            drop(template.channel);
            while let Err(nix::errno::Errno::EINTR) = waitpid(template.pid, None) {}
        }
    }

    /// The template's life: shed the spawner's channels, then fork on each order until the
    /// spawner closes its end.
    fn become_template(&mut self, channel: OwnedFd) -> ! {
        // SECURITY: nothing of the spawner's that reaches the master or a session.
        self.channel = None;
        self.children_signal = None;
        self.tallies = None;
        self.children.clear();
        self.pending.clear();
        self.template_process = None;
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.original_mask), None);
        let _ = nix::sys::prctl::set_name(TEMPLATE_NAME);
        let proof = match SingleThreaded::check() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "template: not single-threaded");
                std::process::exit(EXIT_FAILED);
            }
        };
        let mut buf = [0u8; MAX_RECORD + 1];
        loop {
            let (len, [client, claims]) =
                match sys::recv_message_exact_fds::<2>(channel.as_fd(), &mut buf) {
                    Ok((len, Some(fds))) => (len, fds),
                    Ok((_, None)) => std::process::exit(EXIT_DONE),
                    Err(e) => {
                        tracing::error!(error = %e, "template: bad order from the spawner");
                        std::process::exit(EXIT_FAILED);
                    }
                };
            let order = match Order::decode(&buf[..len]) {
                Ok(order) => order,
                Err(e) => {
                    tracing::error!(error = %e, "template: bad order from the spawner");
                    std::process::exit(EXIT_FAILED);
                }
            };
            let Order::Spawn {
                id,
                client: carried,
            } = order
            else {
                tracing::error!("template: an order other than spawn");
                std::process::exit(EXIT_FAILED);
            };
            match proof.fork() {
                Ok(Forked::Child) => {
                    self.fork_monitor(&proof, channel, id, carried, client, claims)
                }
                Ok(Forked::Parent(intermediate)) => {
                    drop(client);
                    drop(claims);
                    // It exits right after its one fork; nothing of ours waits on the
                    // session itself.
                    while let Err(nix::errno::Errno::EINTR) = waitpid(intermediate, None) {}
                }
                Err(e) => {
                    tracing::error!(error = %e, "template: cannot fork a session");
                    drop(client);
                    drop(claims);
                    report(channel.as_fd(), Report::NotStarted { id });
                }
            }
        }
    }

    /// The intermediate process: into the session's PID namespace, fork the monitor, report
    /// it, exit.
    fn fork_monitor(
        &mut self,
        proof: &SingleThreaded,
        channel: OwnedFd,
        id: u64,
        carried: Option<std::net::SocketAddr>,
        client: OwnedFd,
        claims: OwnedFd,
    ) -> ! {
        // SECURITY: the monitor is process 1 of a new PID namespace (isolate).
        if let Some(pids) = &self.template.pid_namespaces
            && let Err(e) = pids.next_child_in_new()
        {
            tracing::error!(error = %e, "spawner: cannot make a PID namespace; not starting the session");
            report(channel.as_fd(), Report::NotStarted { id });
            std::process::exit(EXIT_DONE);
        }
        match proof.fork() {
            Ok(Forked::Child) => {
                // SECURITY: first, before anything a client can reach: the template's channel.
                drop(channel);
                self.run_monitor(id, carried, client, claims)
            }
            Ok(Forked::Parent(monitor)) => {
                let started = Report::Started {
                    id,
                    pid: monitor.as_raw() as u32,
                };
                report(channel.as_fd(), started);
                std::process::exit(EXIT_DONE);
            }
            Err(e) => {
                tracing::error!(error = %e, "spawner: cannot fork a session");
                report(channel.as_fd(), Report::NotStarted { id });
                std::process::exit(EXIT_DONE);
            }
        }
    }

    /// The monitor: a process of its own, then the session.
    fn run_monitor(
        &mut self,
        id: u64,
        carried: Option<std::net::SocketAddr>,
        client: OwnedFd,
        claims: OwnedFd,
    ) -> ! {
        if let Some(sender) = self.template.tally_sender.as_ref() {
            match sender.try_clone() {
                Ok(copy) => monitor::tally::install(copy),
                Err(e) => tracing::warn!(error = %e, "no metrics counts for this session"),
            }
        }
        // SECURITY: not the spawner's tokio signal sockets (every session would share them):
        // a pair of its own at the same numbers (`sys::runtime_signals`).
        if let Err(e) = crate::sys::runtime_signals::renew() {
            tracing::error!(error = %e, "session: cannot renew the runtime's signal sockets");
            std::process::exit(EXIT_FAILED);
        }
        // Each FTP session is a session of its own, as sshd makes each login one: no
        // controlling terminal or process group shared with the server, and with the kernel's
        // autogroup scheduling (on by default) the CPU is shared between sessions rather than
        // all of them competing as one group against the host.
        if let Err(e) = nix::unistd::setsid() {
            tracing::warn!(error = %e, "session: setsid failed; it shares the spawner's session");
        }
        let _ = nix::sys::prctl::set_name(MONITOR_NAME);
        // The spawner made these directories before it sent the order.
        let cgroup = self.cgroups.as_ref().map(|c| c.of_session(id));
        let template = &self.template;
        let code = monitor::run(
            &template.config,
            &template.users,
            Handover {
                banner: &template.banner,
                empty_net: template.empty_net.as_ref().map(|f| f.as_fd()),
                proxied_client: carried,
                cgroup: cgroup.as_ref(),
                claims: Some(claims.as_fd()),
            },
            std::net::TcpStream::from(client),
        );
        std::process::exit(i32::from(code));
    }
}

/// Tell the spawner; if it is gone there is no one to tell.
fn report(channel: std::os::fd::BorrowedFd<'_>, report: Report) {
    let _ = sys::send_message(channel, &report.encode(), None);
}
