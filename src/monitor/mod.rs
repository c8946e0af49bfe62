//! The monitor: the session process the spawner forks for each connection — root,
//! single-threaded, one per session.
//!
//! It forks the pre-login process at once (which owns the client's connection from then on),
//! answers its requests and, for a login it accepted, forks the user's worker and answers that
//! one's. It owns PAM and NSS (neither ever runs in a process that parses client bytes or is
//! inside a jail), makes the data sockets in the host's network, and closes the PAM session
//! when the session is over. It never reads a byte of the client's connection, and trusts
//! nothing its children send: what is allowed when is the request table ([`requests`]), and
//! anything else ends the session.
//!
//! Layout: [`requests`] (the table and its handlers), [`login`] (one USER/PASS decision),
//! [`passive`] / [`active`] (data sockets), [`standin`] (sockets in the worker's namespace), [`records`] (the session's log records), [`tally`] (its metrics counts), [`probe`] (the same monitor with a test in place of
//! the pre-login process).

pub mod active;
pub mod login;
pub mod passive;
pub mod probe;
pub mod records;
pub mod requests;
pub mod seccomp_kill;
pub mod standin;
pub mod steering;
pub mod tally;
pub mod user_config;

use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::unistd::Pid;

use crate::config::Config;
use crate::jail::nopriv::Account;
use crate::policy::UserList;
use crate::protocol::{ExitReason, SessionEnd};
use crate::sys::{self, Forked};

/// The session's container, before any child exists so both inherit it: its cgroup, its
/// IPC, UTS and mount namespaces (its PID namespace is the spawner's doing), the monitor's
/// resource limits. Any failure ends the session before it starts.
/// This monitor's pid as the host sees it. In the session's own PID namespace (`isolate`)
/// `getpid()` is 1 for every monitor; the host's `/proc` still names the process by its host
/// pid, which is unique among live sessions (the passive sockets' owner uid and the session
/// pid in every log line depend on that). Read once; if `/proc` cannot tell, a random number
/// above every possible pid stands in (logged).
pub fn host_pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(|| {
        let from_proc = std::fs::read_link("/proc/self")
            .ok()
            .and_then(|p| p.to_str().and_then(|s| s.parse::<u32>().ok()));
        match from_proc {
            Some(pid) => pid,
            None if std::process::id() != 1 => std::process::id(),
            None => {
                let mut bytes = [0u8; 4];
                let _ = std::fs::File::open("/dev/urandom")
                    .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
                // Above any real pid (pid_max is at most 2^22), so never a live session's.
                let stand_in = 4_194_304 + u32::from_le_bytes(bytes) % 1_000_000_000;
                tracing::warn!(stand_in, "cannot read this session's host pid from /proc");
                stand_in
            }
        }
    })
}

fn contain(
    config: &Config,
    cgroup: Option<&crate::spawner::cgroup::SessionCgroup>,
) -> Result<(), String> {
    if let Some(cgroup) = cgroup {
        cgroup
            .join()
            .map_err(|e| format!("cannot join the session cgroup: {e}"))?;
    }
    if config.isolate {
        crate::jail::sandbox::enter_session_namespaces()
            .map_err(|e| format!("cannot enter the session's namespaces (isolate): {e}"))?;
    }
    crate::jail::sandbox::limit_monitor(config).map_err(|(what, e)| format!("{what}: {e}"))
}

/// What the master handed this session besides the config and the user list.
pub struct Handover<'a> {
    pub banner: &'a str,
    /// The spawner's empty network namespace, for the pre-login process.
    pub empty_net: Option<std::os::fd::BorrowedFd<'a>>,
    /// The client's address from a trusted load balancer's PROXY header (`proxy_protocol`),
    /// read and checked by the master; `None` = the socket's peer is the client.
    pub proxied_client: Option<SocketAddr>,
    /// The session's cgroups, made by the spawner (a delegated cgroup v2 subtree, and on a
    /// hybrid host the service's v1 ones).
    pub cgroup: Option<&'a crate::spawner::cgroup::SessionCgroup>,
    /// The monitor's channel to the spawner for its login claim (`max_per_user`); `None`
    /// for the probe, which counts nothing.
    pub claims: Option<std::os::fd::BorrowedFd<'a>>,
}

/// The two ends of the control connection, as the host sees them.
#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    /// The client: the socket's peer, or the address a trusted load balancer's PROXY header
    /// carried. Every check and log line of the session uses this one (`PAM_RHOST`,
    /// PORT/EPRT, the passive data connection's peer, the worker's `STAT`).
    pub client: SocketAddr,
    /// The load balancer the connection came through (`proxy_protocol`), for the logs.
    pub proxy: Option<SocketAddr>,
    /// Where the client connected to: data sockets are made here and nowhere else.
    pub local_ip: IpAddr,
}

/// What every child of this monitor starts from (inherited through fork, never re-read).
pub struct SessionSetup<'a> {
    pub config: &'a Config,
    pub users: &'a UserList,
    pub addresses: Addresses,
    /// The monitor's own claim channel ([`Handover::claims`]): closed in both children,
    /// which close every descriptor they do not name.
    pub claims: Option<std::os::fd::BorrowedFd<'a>>,
}

/// The pre-login process's account, looked up here (NSS runs only in the monitor).
fn nopriv_account(config: &Config) -> Result<Account, String> {
    let user = nix::unistd::User::from_name(&config.nopriv_user)
        .map_err(|e| format!("nopriv_user {}: {e}", config.nopriv_user))?
        .ok_or_else(|| format!("nopriv_user {} has no passwd entry", config.nopriv_user))?;
    if user.uid.is_root() {
        return Err(format!("nopriv_user {} is uid 0", config.nopriv_user));
    }
    Ok(Account {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    })
}

/// The client's and our address, or why the session cannot start.
fn addresses(client: &std::net::TcpStream, carried: Option<SocketAddr>) -> Option<Addresses> {
    match (client.peer_addr(), client.local_addr()) {
        (Ok(peer), Ok(local)) => Some(Addresses {
            client: carried.unwrap_or(peer),
            proxy: carried.map(|_| peer),
            local_ip: crate::jail::netns::unmapped(local.ip()),
        }),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "client went away before the session started");
            None
        }
    }
}

/// Run one session for `client`. Returns the exit code the master will read
/// ([`SessionEnd::code`]).
pub fn run(
    config: &Config,
    users: &UserList,
    handover: Handover<'_>,
    client: std::net::TcpStream,
) -> u8 {
    let Some(addresses) = addresses(&client, handover.proxied_client) else {
        return ExitReason::Closed as u8;
    };
    if let Some(proxy) = addresses.proxy {
        tracing::debug!(client = %addresses.client, proxy = %proxy, "session through a load balancer");
    }
    if let Err(e) = contain(config, handover.cgroup) {
        tracing::error!("{e}");
        return ExitReason::Error as u8;
    }
    let account = match nopriv_account(config) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("cannot start the pre-login process: {e}");
            return ExitReason::Error as u8;
        }
    };
    // The pre-login process gets the certificate only: the key is read after it exists.
    let tls_certificate = if config.ssl_enable {
        match crate::tls::read_certificate(config) {
            Ok(pem) => Some(pem),
            Err(e) => {
                tracing::error!("TLS: {e}");
                return ExitReason::Error as u8;
            }
        }
    } else {
        None
    };
    let (monitor_end, prelogin_end) = match socketpair(
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
    let monitor_pid = nix::unistd::getpid();
    match sys::fork_single_threaded() {
        Err(e) => {
            tracing::error!(error = %e, "cannot fork the pre-login process");
            ExitReason::Error as u8
        }
        Ok(Forked::Child) => {
            drop(monitor_end);
            let _ = nix::sys::prctl::set_name(PRELOGIN_NAME);
            let reason = crate::prelogin::run(crate::prelogin::Start {
                config,
                users,
                banner: handover.banner,
                client,
                channel: prelogin_end,
                account,
                tls_certificate,
                empty_net: handover.empty_net,
                parent: monitor_pid,
                addresses,
            });
            std::process::exit(reason as i32);
        }
        Ok(Forked::Parent(pid)) => {
            drop(prelogin_end);
            // The pre-login process owns the connection; the monitor must not keep it alive.
            drop(client);
            let setup = SessionSetup {
                config,
                users,
                addresses,
                claims: handover.claims,
            };
            let (reason, failures) = requests::serve(&setup, Some(pid), monitor_end);
            SessionEnd::code(reason, failures)
        }
    }
}

/// Process names, as `ps` and the tests see them.
pub const PRELOGIN_NAME: &std::ffi::CStr = c"rftpd-prelogin";
pub const WORKER_NAME: &std::ffi::CStr = c"rftpd-worker";

/// A child of the monitor and the monitor's end of its channel.
pub struct Child {
    /// `None` for the probe's stand-in pre-login process (a test, not our child).
    pub pid: Option<Pid>,
    pub channel: Option<OwnedFd>,
}
