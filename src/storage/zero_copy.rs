//! Plain-text downloads by `sendfile(2)`: the file's pages go from the page cache to the data
//! socket without passing through the worker's memory (vsftpd sends every download this way).
//!
//! libunftp gives `get_into` its data connection only as an `AsyncWrite`, so the socket is
//! found by what the worker knows of it: the one connected socket bound to the session's
//! passive listener address whose peer is the client (see `crate::sys::find_connected_socket`).
//! It must never be used when the connection is protected — the bytes would bypass TLS — so
//! every condition below has to hold, and anything unclear takes the ordinary copying path:
//! the binder records the address only for a plain passive connection (`PROT C`), the data
//! TLS state must say clear, and exactly one socket must match.
//! Runs in the worker, as the user, jailed.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use unftp_core::storage::{Error, Result};

use super::JailedStorage;

/// Files smaller than this are copied (a read and a write cost less than finding the socket).
pub(super) const MIN_SIZE: u64 = 128 * 1024;

/// Descriptors looked at when finding the data socket (a worker has a few dozen at most).
const FD_SCAN_LIMIT: i32 = 128;

/// One `sendfile` call moves at most this much.
const STEP: usize = 4 << 20;

impl JailedStorage {
    /// The data socket of this download, if it may be written to directly: the connection is
    /// not TLS (`tls_seen` false and `PROT P` not in force, see `worker::datatls`), it is
    /// passive and libunftp holds the client's own socket, and exactly one socket matches.
    pub(super) fn plain_data_socket(&self, tls_seen: bool) -> Option<OwnedFd> {
        let private = self.shared.tls.as_ref().is_some_and(|t| t.protected());
        // SECURITY: a protected (or possibly protected) connection is never written around TLS
        // (under PROT P the client's socket belongs to the worker's TLS end, not libunftp).
        if tls_seen || private {
            return None;
        }
        let local = (*self
            .shared
            .passive_address
            .lock()
            .unwrap_or_else(|p| p.into_inner()))?;
        crate::sys::find_connected_socket(local, self.shared.client_ip, FD_SCAN_LIMIT)
    }

    /// Send `file` from `offset` to its end into `socket`; the bytes sent (also added to `sent`
    /// as they go, for the transfer's record).
    pub(super) async fn send_file(
        &self,
        socket: OwnedFd,
        file: &File,
        offset: u64,
        sent: &AtomicU64,
    ) -> Result<u64> {
        let socket = crate::sys::async_fd(socket).map_err(Error::from)?;
        let start = i64::try_from(offset).map_err(|_| Error::from(io::Error::other("offset")))?;
        let mut at: i64 = start;
        loop {
            match nix::sys::sendfile::sendfile64(socket.get_ref(), file, Some(&mut at), STEP) {
                Ok(0) => break,
                Ok(n) => {
                    sent.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(nix::errno::Errno::EAGAIN) => {
                    self.within_data_timeout(async {
                        let mut ready = socket.writable().await?;
                        ready.clear_ready();
                        Ok(())
                    })
                    .await?;
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::from(io::Error::from(e))),
            }
        }
        Ok(u64::try_from(at - start).unwrap_or(0))
    }
}
