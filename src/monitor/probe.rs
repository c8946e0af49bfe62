//! `rftpd monitor-probe --config FILE`: the real monitor for one connection with a test in
//! place of the pre-login process — how the test suite proves that the monitor distrusts its
//! children (a pre-login process that asks for what it must not, or ignores the replies).
//!
//! It is started by root with fd 3 a connected TCP socket standing for the client's control
//! connection and fd 4 the pre-login end's peer: an `AF_UNIX` `SOCK_SEQPACKET` socket. It gives
//! its caller nothing the caller did not already have (it must be root to start it, and the
//! monitor only ever answers requests); it never reads fd 3.

use crate::config::Config;
use crate::policy::UserList;
use crate::protocol::{ExitReason, SessionEnd};

const CLIENT_FD: i32 = 3;
const CHANNEL_FD: i32 = 4;

/// Run the monitor on the inherited descriptors; returns the session's exit code.
pub fn run(config: &Config, users: &UserList) -> u8 {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("rftpd monitor-probe: must run as root");
        return ExitReason::Error as u8;
    }
    let taken = crate::sys::take_inherited_fd(CLIENT_FD)
        .and_then(|c| Ok((c, crate::sys::take_inherited_fd(CHANNEL_FD)?)));
    let (client, channel) = match taken {
        Ok(fds) => fds,
        Err(e) => {
            eprintln!("rftpd monitor-probe: fd 3 and 4 must be open: {e}");
            return ExitReason::Error as u8;
        }
    };
    match nix::sys::socket::getsockopt(&channel, nix::sys::socket::sockopt::SockType) {
        Ok(nix::sys::socket::SockType::SeqPacket) => {}
        _ => {
            eprintln!("rftpd monitor-probe: fd 4 is not a SOCK_SEQPACKET socket");
            return ExitReason::Error as u8;
        }
    }
    let client = std::net::TcpStream::from(client);
    let Some(addresses) = super::addresses(&client, None) else {
        return ExitReason::Closed as u8;
    };
    let setup = super::SessionSetup {
        config,
        users,
        addresses,
        claims: None,
    };
    let (reason, failures) = super::requests::serve(&setup, None, channel);
    drop(client);
    SessionEnd::code(reason, failures)
}
