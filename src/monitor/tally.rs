//! The monitor's side of the metrics counts: one datagram to the spawner per login result and
//! per transfer ([`crate::protocol::tally`]), sent as it happens.
//!
//! The socket is the spawner's, inherited at fork (close-on-exec; neither child keeps it:
//! both close every descriptor they were not given), so only monitors — root, outside every
//! jail — can send. The counts come from what the monitor decided itself (logins) and from
//! the transfer events its worker reports (already rate-limited by the records): a session can
//! count only its own transfers, with the bytes it says it moved.
//!
//! What it must never do: block the session (a full queue drops the count), or send
//! anything a client typed.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;

use nix::sys::socket::{MsgFlags, send};

use crate::protocol::tally::Tally;

static SENDER: OnceLock<OwnedFd> = OnceLock::new();

/// Called once in a freshly forked monitor, with its copy of the spawner's socket.
pub fn install(socket: OwnedFd) {
    let _ = SENDER.set(socket);
}

/// Count `tally` (nothing without metrics: no socket was installed).
pub fn count(tally: Tally) {
    let Some(socket) = SENDER.get() else { return };
    use std::os::fd::AsRawFd;
    if let Err(e) = send(
        socket.as_fd().as_raw_fd(),
        &tally.encode(),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
    ) {
        tracing::debug!(error = %e, "metrics count dropped");
    }
}
