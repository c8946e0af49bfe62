//! The monitor: the session process the spawner forks for each connection, root,
//! single-threaded.
//!
//! It forks the worker, then only answers the worker's requests over a socketpair and waits for
//! it to end. It owns PAM and NSS (neither ever runs in a process that is or will be inside a
//! user-writable jail) and closes the PAM session when the worker is gone. It never parses FTP
//! and trusts nothing the worker sends: a malformed or out-of-order request kills the session.

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::auth::PamLogin;
use crate::config::Config;
use crate::session::passive::PassivePorts;
use crate::session::policy::UserList;
use crate::session::protocol::{MAX_MESSAGE, Reply, Request};
use crate::session::{ExitReason, SessionEnd, active, login, worker};
use crate::sys::{self, Forked};

/// Per-session resource limits, set before the worker exists so it inherits them.
fn limit_resources() {
    use nix::sys::resource::{Resource, setrlimit};
    // No core files: a session's memory holds a password for a moment.
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    // Enough descriptors for a control connection, a data connection and a few files.
    let _ = setrlimit(Resource::RLIMIT_NOFILE, 256, 256);
    // Bounds what one connection can make the process allocate (libunftp's line reader has
    // no length cap): past this, allocation fails and the session process dies alone.
    let _ = setrlimit(
        Resource::RLIMIT_AS,
        SESSION_ADDRESS_SPACE,
        SESSION_ADDRESS_SPACE,
    );
}

/// Address-space limit of a session process.
const SESSION_ADDRESS_SPACE: u64 = 1 << 30;

/// What the master handed this session besides the config and the user list.
pub struct Handover<'a> {
    pub banner: &'a str,
}

/// Run one session for `client`. Returns the exit code the master will read
/// ([`SessionEnd::code`]).
pub fn run(
    config: &Config,
    users: &UserList,
    handover: Handover<'_>,
    client: std::net::TcpStream,
) -> u8 {
    let peer = match client.peer_addr() {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "client went away before the session started");
            return ExitReason::Closed as u8;
        }
    };
    let local_ip = match client.local_addr() {
        Ok(a) => crate::session::netns::unmapped(a.ip()),
        Err(e) => {
            tracing::warn!(error = %e, "client went away before the session started");
            return ExitReason::Closed as u8;
        }
    };
    limit_resources();
    let (monitor_end, worker_end) = match socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    ) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::error!(error = %e, "socketpair failed");
            return ExitReason::Error as u8;
        }
    };
    match sys::fork_single_threaded() {
        Err(e) => {
            tracing::error!(error = %e, "cannot fork the worker");
            ExitReason::Error as u8
        }
        Ok(Forked::Child) => {
            drop(monitor_end);
            let _ = nix::sys::prctl::set_name(crate::spawner::WORKER_NAME);
            let reason = worker::run(
                config.clone(),
                users.clone(),
                handover.banner.to_string(),
                client,
                worker_end,
            );
            std::process::exit(reason as i32);
        }
        Ok(Forked::Parent(pid)) => {
            drop(worker_end);
            // The worker owns the connection; the monitor must not keep it alive.
            drop(client);
            let addresses = Addresses {
                client: peer,
                local_ip,
            };
            let (reason, failures) = serve_worker(config, users, addresses, pid, monitor_end);
            SessionEnd::code(reason, failures)
        }
    }
}

/// Why the monitor stopped listening to its worker.
enum Stop {
    /// The worker closed its end (it is exiting).
    WorkerGone,
    /// The worker sent something it must not; it has been killed.
    Violation(String),
}

/// The two ends of the control connection, as the host sees them.
struct Addresses {
    client: SocketAddr,
    /// Where the client connected to: passive sockets are bound here and nowhere else.
    local_ip: std::net::IpAddr,
}

/// Answer requests until the worker goes away, then reap it and close PAM. Returns how the
/// session ended and how many logins failed.
fn serve_worker(
    config: &Config,
    users: &UserList,
    addresses: Addresses,
    worker: Pid,
    channel: OwnedFd,
) -> (ExitReason, u32) {
    let peer = addresses.client;
    let mut passive = PassivePorts::from_config(config);
    let mut pam: Option<PamLogin> = None;
    let mut logged_in = false;
    let mut failures: u32 = 0;
    let mut buf = vec![0u8; MAX_MESSAGE];
    let stop = loop {
        let (len, fd) = match sys::recv_message(channel.as_fd(), &mut buf) {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(nix::libc::EINTR) => continue,
            Err(e) => break Stop::Violation(format!("bad message: {e}")),
        };
        if len == 0 {
            break Stop::WorkerGone;
        }
        if fd.is_some() {
            break Stop::Violation("worker sent a file descriptor".into());
        }
        let request = match Request::decode(&buf[..len]) {
            Ok(r) => r,
            Err(e) => break Stop::Violation(e.to_string()),
        };
        match request {
            Request::BindPassive if !logged_in => {
                break Stop::Violation("passive socket requested before login".into());
            }
            Request::BindPassive => {
                let sent = match passive.bind(addresses.local_ip) {
                    Ok(listener) => sys::send_message(
                        channel.as_fd(),
                        &Reply::Bound.encode(),
                        Some(listener.as_fd()),
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, address = %addresses.local_ip, "no passive socket");
                        sys::send_message(channel.as_fd(), &Reply::NotBound.encode(), None)
                    }
                };
                if sent.is_err() {
                    break Stop::WorkerGone;
                }
            }
            Request::ConnectActive(_) if !logged_in => {
                break Stop::Violation("active connection requested before login".into());
            }
            Request::ConnectActive(target)
                if !config.port_enable
                    || !active::allowed(target, peer.ip(), config.port_promiscuous) =>
            {
                break Stop::Violation(format!(
                    "active connection to {target} that the configuration forbids"
                ));
            }
            Request::ConnectActive(target) => {
                let from_port = config.connect_from_port_20.then_some(config.ftp_data_port);
                let timeout = std::time::Duration::from_secs(config.connect_timeout.max(1));
                let sent = match active::connect(target, addresses.local_ip, from_port, timeout) {
                    Ok(stream) => sys::send_message(
                        channel.as_fd(),
                        &Reply::Connected.encode(),
                        Some(stream.as_fd()),
                    ),
                    Err(e) => {
                        tracing::info!(error = %e, address = %target, "active data connection failed");
                        sys::send_message(channel.as_fd(), &Reply::NotConnected.encode(), None)
                    }
                };
                if sent.is_err() {
                    break Stop::WorkerGone;
                }
            }
            Request::Login { .. } if logged_in => {
                break Stop::Violation("login request after a successful login".into());
            }
            Request::Login {
                user,
                mut password,
                tls,
            } => {
                let attempt = login::Attempt {
                    user: &user,
                    password: &password,
                    client: peer.ip(),
                    tls,
                };
                let outcome = login::decide(config, users, &attempt);
                password.iter_mut().for_each(|b| *b = 0);
                let sent = match outcome {
                    Ok(accepted) => {
                        tracing::info!(user = %user, client = %peer.ip(), jailed = accepted.grant.jailed,
                            anonymous = accepted.grant.anonymous, start = %accepted.grant.start_dir, "login ok");
                        let msg = Reply::Granted(accepted.grant).encode();
                        logged_in = true;
                        pam = accepted.pam;
                        sys::send_message(channel.as_fd(), &msg, Some(accepted.start_dir.as_fd()))
                    }
                    Err(reason) => {
                        failures += 1;
                        tracing::warn!(user = %user, client = %peer.ip(), reason = %reason, "login refused");
                        let disconnect =
                            config.max_login_fails > 0 && failures >= config.max_login_fails;
                        sys::send_message(
                            channel.as_fd(),
                            &Reply::Denied { disconnect }.encode(),
                            None,
                        )
                    }
                };
                if let Err(e) = sent {
                    tracing::debug!(error = %e, "worker gone before the login reply");
                    break Stop::WorkerGone;
                }
                // PAM and the password hash ran deep and allocated a lot; none of it is needed
                // again (and the discarded stack held the password for a moment).
                sys::release_free_heap();
                sys::discard_stack_below_caller();
            }
        }
    };
    if let Stop::Violation(why) = &stop {
        tracing::error!(client = %peer.ip(), reason = %why, "worker broke the monitor protocol; killing it");
        let _ = kill(worker, Signal::SIGKILL);
    }
    let status = loop {
        match waitpid(worker, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other,
        }
    };
    if let Some(pam) = pam {
        pam.close();
    }
    let reason = match (stop, status) {
        (Stop::Violation(_), _) => ExitReason::Error,
        (_, Ok(WaitStatus::Exited(_, code))) => {
            ExitReason::from_code(code).unwrap_or(ExitReason::Error)
        }
        (_, Ok(WaitStatus::Signaled(_, signal, _))) => {
            tracing::warn!(client = %peer.ip(), signal = %signal, "worker killed by a signal");
            ExitReason::Error
        }
        (_, other) => {
            tracing::error!(status = ?other, "unexpected worker status");
            ExitReason::Error
        }
    };
    (reason, failures)
}
