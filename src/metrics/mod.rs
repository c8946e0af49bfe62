//! The metrics endpoint process (`metrics_enable`): `nopriv_user`, chrooted into the empty
//! `secure_chroot_dir`, no capabilities, `no_new_privs`, rlimits, its own empty network
//! namespace (`isolate_network`; the listening socket the master bound still accepts) and a
//! seccomp allow-list (`seccomp_sandbox`) — the pre-login process's sandbox
//! (`crate::jail::nopriv`), plus `accept4`. The master fork+execs it and hands it the listening
//! socket over its channel.
//!
//! It answers `GET /metrics` with the text it asks the master for (one request byte, the text
//! back: `crate::protocol::metrics`), one connection at a time, each within
//! [`REQUEST_TIMEOUT`] and [`http::MAX_REQUEST`] bytes of head; anything else gets 400, 404,
//! 405 or 431 and the connection is closed. Why a process of its own: the master is root and
//! must not parse bytes from the network; this process can reach nothing but its two sockets.
//!
//! What it must never do: run before its sandbox is complete (any failed step aborts it),
//! read more than the bounds above, or wait on a client without a deadline.

pub mod http;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::SockType;

use crate::config::Config;
use crate::jail::nopriv::{self, Account, Layers};
use crate::protocol::metrics::{LISTENER, MAX_TEXT, SCRAPE};
use crate::sys;

/// The process name (`comm`), as `ps` and the tests see it.
pub const ENDPOINT_NAME: &std::ffi::CStr = c"rftpd-metrics";

/// How long one connection may take, from accept to the last byte of the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Entry point of `rftpd metrics-endpoint`. Returns the exit code.
pub fn run(config: &Config) -> u8 {
    let channel = match sys::take_stdin_socket(SockType::SeqPacket) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the metrics endpoint is started by the rftpd master only");
            return 2;
        }
    };
    let _ = nix::sys::prctl::set_name(ENDPOINT_NAME);
    let parent = nix::unistd::getppid();
    let mut first = [0u8; 2];
    let listener = match sys::recv_message(channel.as_fd(), &mut first) {
        Ok((len, Some(fd))) if &first[..len] == LISTENER => fd,
        Ok(_) => {
            tracing::error!("metrics endpoint: the master's first message is not the listener");
            return 1;
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics endpoint: no listener from the master");
            return 1;
        }
    };
    // NSS runs here, as root, before the sandbox and before any network byte.
    let account = match nix::unistd::User::from_name(&config.nopriv_user) {
        Ok(Some(u)) if !u.uid.is_root() => Account {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        },
        _ => {
            tracing::error!(user = %config.nopriv_user, "metrics endpoint: no usable nopriv_user");
            return 1;
        }
    };
    // SECURITY: the whole sandbox before the first byte from the network.
    nopriv::enter(
        account,
        &config.secure_chroot_dir,
        None,
        Layers {
            network: config.isolate_network,
            seccomp: config.seccomp_sandbox,
            role: crate::jail::seccomp::Role::Metrics,
        },
        &[channel.as_raw_fd(), listener.as_raw_fd()],
        parent,
    );
    serve(&channel, listener)
}

/// Accept and answer connections until the master goes away.
fn serve(channel: &OwnedFd, listener: OwnedFd) -> u8 {
    let listener = std::net::TcpListener::from(listener);
    if let Err(e) = listener.set_nonblocking(true) {
        tracing::error!(error = %e, "metrics endpoint: cannot make the listener non-blocking");
        return 1;
    }
    loop {
        let (master_gone, connection) = {
            let mut fds = [
                PollFd::new(channel.as_fd(), PollFlags::POLLIN),
                PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    tracing::error!(error = %e, "metrics endpoint: poll failed");
                    return 1;
                }
            }
            let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        };
        if master_gone {
            // The master sends nothing unasked: its end, or a late answer to a request that
            // timed out (dropped).
            let mut late = vec![0u8; MAX_TEXT];
            match sys::recv_message(channel.as_fd(), &mut late) {
                Ok((0, _)) | Err(_) => return 0,
                Ok(_) => continue,
            }
        }
        if !connection {
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = answer(channel, stream) {
                    tracing::debug!(error = %e, "metrics request not answered");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => {
                tracing::debug!(error = %e, "metrics endpoint: accept failed");
                // EMFILE and friends: do not spin.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "request timeout")
}

/// Wait until `fd` is ready for `flags` or `deadline` passes.
fn wait(
    fd: std::os::fd::BorrowedFd<'_>,
    flags: PollFlags,
    deadline: Instant,
) -> std::io::Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        let millis = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(fd, flags)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Read one request head and answer it, all within [`REQUEST_TIMEOUT`].
fn answer(channel: &OwnedFd, mut stream: TcpStream) -> std::io::Result<()> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    stream.set_nonblocking(true)?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let route = loop {
        if let Some(end) = http::head_end(&head) {
            break Some(http::route(&head[..end]));
        }
        if head.len() >= http::MAX_REQUEST {
            break None;
        }
        wait(stream.as_fd(), PollFlags::POLLIN, deadline)?;
        let room = (http::MAX_REQUEST - head.len()).min(buf.len());
        match stream.read(&mut buf[..room]) {
            Ok(0) => return Ok(()),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    };
    let reply = match route {
        Some(http::Route::Metrics) => {
            http::response("200 OK", http::OPENMETRICS, &scrape(channel, deadline)?)
        }
        other => http::refusal(other),
    };
    let mut written = 0;
    while written < reply.len() {
        wait(stream.as_fd(), PollFlags::POLLOUT, deadline)?;
        match stream.write(&reply[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}

/// Ask the master for the current text.
fn scrape(channel: &OwnedFd, deadline: Instant) -> std::io::Result<Vec<u8>> {
    let mut text = vec![0u8; MAX_TEXT];
    // An answer that came after an earlier request timed out is stale: drop it first, so
    // every request gets the text made for it.
    loop {
        let mut fds = [PollFd::new(channel.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(0) => break,
            Ok(_) => match sys::recv_message(channel.as_fd(), &mut text)? {
                (0, _) => return Err(std::io::Error::other("the master is gone")),
                _ => continue,
            },
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    sys::send_message(channel.as_fd(), SCRAPE, None)?;
    wait(channel.as_fd(), PollFlags::POLLIN, deadline)?;
    match sys::recv_message(channel.as_fd(), &mut text)? {
        (0, _) => Err(std::io::Error::other("the master is gone")),
        (_, Some(_)) => Err(std::io::Error::other("a descriptor from the master")),
        (len, None) => {
            text.truncate(len);
            Ok(text)
        }
    }
}
