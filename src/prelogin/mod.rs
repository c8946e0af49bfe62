//! The pre-login process: the unprivileged owner of the client's control connection, for the
//! whole session (vsftpd's pre-login process and "SSL slave" in one).
//!
//! The monitor forks it right after the connection is accepted. Before it reads the first byte
//! it enters its sandbox (`crate::jail::nopriv`: the `nopriv_user` account, chrooted into the
//! empty `secure_chroot_dir`, no capabilities, no network, no process creation). Then it sends
//! the greeting and holds the pre-login conversation ([`conversation`]): `AUTH TLS` (the
//! control channel's TLS ends here), `USER`/`PASS` with vsftpd's replies (the monitor
//! decides), and the few commands a client sends before logging in. Once the monitor has
//! accepted a login and started the user's worker, it only carries bytes between the client
//! and the worker ([`pump`]).
//!
//! It never touches a file, never holds a descriptor other than its sockets, and never logs a
//! password. Everything it tells the monitor or the worker is checked there.

pub mod client;
pub mod conversation;
pub mod pump;

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use crate::config::Config;
use crate::jail::nopriv::Account;
use crate::policy::UserList;
use crate::protocol::ExitReason;
use crate::tls::{self, HandshakeLog};

/// What the monitor forks the pre-login process with.
pub struct Start<'a> {
    pub config: &'a Config,
    pub users: &'a UserList,
    /// `banner_file`'s text, read by the master.
    pub banner: &'a str,
    pub client: std::net::TcpStream,
    /// This process's end of its channel to the monitor.
    pub channel: OwnedFd,
    pub account: Account,
    /// The certificate chain (PEM), read by the monitor as root (`ssl_enable`). The private
    /// key stays in the monitor, which signs the handshakes.
    pub tls_certificate: Option<Vec<u8>>,
    /// A network namespace with nothing in it to enter (else it makes its own).
    pub empty_net: Option<std::os::fd::BorrowedFd<'a>>,
    pub parent: nix::unistd::Pid,
    /// The client's address (the one a trusted PROXY header carried, if any) and ours.
    pub addresses: crate::monitor::Addresses,
}

/// The greeting: `banner_file` as `220-` lines and a final `220 ` line, or `ftpd_banner`.
pub fn greeting(config: &Config, banner: &str) -> String {
    let lines: Vec<&str> = banner.lines().collect();
    if config.banner_file.is_some() && !lines.is_empty() {
        let mut out = String::new();
        for line in &lines[..lines.len() - 1] {
            out.push_str(&format!("220-{}\r\n", line.replace('\r', "")));
        }
        out.push_str(&format!(
            "220 {}\r\n",
            lines[lines.len() - 1].replace('\r', "")
        ));
        return out;
    }
    format!(
        "220 {}\r\n",
        config.ftpd_banner.as_deref().unwrap_or("(rftpd)")
    )
}

/// Enter the sandbox, then serve the connection until the session ends.
pub fn run(start: Start<'_>) -> ExitReason {
    // SECURITY: the runtime's signal sockets are this process's own, not the monitor's.
    let mut keep = match crate::sys::runtime_signals::renew() {
        Ok(numbers) => numbers,
        Err(e) => {
            tracing::error!(error = %e, "cannot renew the runtime's signal sockets");
            return ExitReason::Error;
        }
    };
    keep.extend([start.client.as_raw_fd(), start.channel.as_raw_fd()]);
    crate::jail::nopriv::enter(
        start.account,
        &start.config.secure_chroot_dir,
        start.empty_net,
        crate::jail::nopriv::Layers {
            network: start.config.isolate_network,
            seccomp: start.config.seccomp_sandbox,
            role: crate::jail::seccomp::Role::Prelogin,
        },
        &keep,
        start.parent,
    );
    // One thread, for good: RLIMIT_NPROC is 0, so nothing here may spawn a thread (no
    // blocking pool is ever used).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the pre-login runtime");
            return ExitReason::Error;
        }
    };
    runtime.block_on(Box::pin(serve(start)))
}

async fn serve(start: Start<'_>) -> ExitReason {
    let config = start.config;
    // TLS is set up at the first AUTH TLS only: most plain sessions never pay for it.
    let tls = match (start.tls_certificate, config.ssl_enable) {
        (Some(pem), true) => match start.channel.try_clone() {
            Ok(channel) => Some(LazyTls {
                config,
                pem,
                channel,
            }),
            Err(e) => {
                tracing::error!(error = %e, "TLS: cannot share the monitor channel");
                return ExitReason::Error;
            }
        },
        _ => None,
    };
    if start.client.set_nonblocking(true).is_err() {
        return ExitReason::Error;
    }
    let Ok(client) = tokio::net::TcpStream::from_std(start.client) else {
        return ExitReason::Error;
    };
    // Replies are small and each one is awaited: Nagle's algorithm against the peer's
    // delayed ACK would add up to 40 ms to every command.
    let _ = client.set_nodelay(true);
    let monitor = match nix::fcntl::fcntl(
        &start.channel,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .map_err(std::io::Error::from)
    .and_then(|_| crate::sys::async_fd(start.channel))
    {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the monitor channel");
            return ExitReason::Error;
        }
    };
    let conversation = conversation::Conversation::new(
        config,
        start.users,
        tls,
        monitor,
        start.addresses.client.to_string(),
    );
    conversation
        .run(client, greeting(config, start.banner))
        .await
}

/// What the control connection's TLS is built from, at the first `AUTH TLS`.
pub struct LazyTls<'a> {
    config: &'a Config,
    /// The certificate chain (PEM).
    pem: Vec<u8>,
    /// A descriptor of the monitor channel, for the handshake signatures.
    channel: OwnedFd,
}

impl LazyTls<'_> {
    /// The acceptor, and where the sessions its handshakes store are recorded.
    pub fn build(self) -> Result<(tokio_rustls::TlsAcceptor, Arc<tls::StoredSessions>), String> {
        let key = tls::remote::certified_key(tls::parse_chain(&self.pem)?, self.channel)?;
        let log = Arc::new(HandshakeLog::default());
        let (server_config, stored) =
            tls::server_config(self.config, tls::Identity::Ready(key), log, Vec::new())?;
        Ok((tokio_rustls::TlsAcceptor::from(server_config), stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings_follow_vsftpd() {
        let config = Config::default();
        assert_eq!(greeting(&config, ""), "220 (rftpd)\r\n");
        let config = Config {
            ftpd_banner: Some("Hello".into()),
            ..Config::default()
        };
        assert_eq!(greeting(&config, ""), "220 Hello\r\n");
        let config = Config {
            banner_file: Some("/x".into()),
            ..Config::default()
        };
        assert_eq!(
            greeting(&config, "one\ntwo\r\nthree\n"),
            "220-one\r\n220-two\r\n220 three\r\n"
        );
    }
}
