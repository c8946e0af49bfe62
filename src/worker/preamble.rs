//! What the worker reads first from the pre-login process, before serving: the preamble (the
//! pre-login state the session carries on with) and, for a plain control connection, the
//! client's socket handed over with it.
//!
//! SECURITY: the pre-login process is not trusted here either: the preamble is length-capped
//! and decoded strictly, at most one descriptor is accepted and only with a preamble that
//! announces it, and that descriptor must be a connected stream socket.

use std::os::fd::OwnedFd;

use crate::protocol::link::{MAX_PREAMBLE, Preamble};
use crate::sys;

/// Read the pre-login process's preamble from the link, and the client's socket when it
/// comes with it (a plain control connection handed over). Reads exactly the preamble: under
/// TLS the client's commands follow on the link.
pub(super) async fn read_preamble(
    link: &tokio::io::unix::AsyncFd<OwnedFd>,
) -> std::io::Result<(Preamble, Option<OwnedFd>)> {
    let mut got: Vec<u8> = Vec::new();
    let mut passed: Option<OwnedFd> = None;
    loop {
        let want = if got.len() < 4 {
            4
        } else {
            let len = u32::from_le_bytes([got[0], got[1], got[2], got[3]]) as usize;
            if len > MAX_PREAMBLE {
                return Err(std::io::Error::other("link preamble too long"));
            }
            4 + len
        };
        if got.len() == want && want > 4 {
            break;
        }
        // Exactly what is still missing: a buffer of MAX_PREAMBLE would be zeroed (touched)
        // whole and stay in every idle worker's heap.
        let mut buf = vec![0u8; want - got.len()];
        let (n, fd) = sys::recv_message_async(link, &mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::other("link closed before the preamble"));
        }
        if let Some(fd) = fd {
            if passed.is_some() {
                return Err(std::io::Error::other(
                    "more than one descriptor on the link",
                ));
            }
            passed = Some(fd);
        }
        got.extend_from_slice(&buf[..n]);
    }
    let preamble = Preamble::decode(&got[4..]).map_err(std::io::Error::other)?;
    if preamble.handoff != passed.is_some() {
        return Err(std::io::Error::other(
            "the preamble and the passed descriptor disagree",
        ));
    }
    Ok((preamble, passed))
}

/// The client's control connection, handed over: it must be a connected TCP socket.
pub(super) fn client_socket(fd: OwnedFd) -> std::io::Result<tokio::net::TcpStream> {
    use nix::sys::socket::{SockType, getsockopt, sockopt};
    if getsockopt(&fd, sockopt::SockType)? != SockType::Stream {
        return Err(std::io::Error::other("not a stream socket"));
    }
    let stream = std::net::TcpStream::from(fd);
    stream.peer_addr()?;
    nonblocking_tcp(stream)
}

pub(super) fn nonblocking_tcp(s: std::net::TcpStream) -> std::io::Result<tokio::net::TcpStream> {
    s.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(s)
}
