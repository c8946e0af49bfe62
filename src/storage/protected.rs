//! Protected (`PROT P`) downloads and uploads handed to the worker's data TLS end
//! (`worker::tls_transfer`) with the file this layer opened after its checks, so the bytes go
//! between the file and the client's TLS without crossing libunftp's stand-in connection.
//! Runs in the worker, as the user, jailed; only after every check of the transfer passed and
//! its `150` is out, and only for binary transfers (the `ASCII` conversions stay here).

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use unftp_core::storage::{Error, ErrorKind, Result};

use super::JailedStorage;
use crate::worker::tls_transfer::{Claim, Direction};

impl JailedStorage {
    /// Carry this transfer on the protected data connection in use: `None` if that cannot
    /// take it (the caller then moves the bytes through libunftp's stream as usual).
    pub(super) async fn protected_transfer(
        &self,
        direction: Direction,
        file: Arc<File>,
        offset: u64,
        moved: &Arc<AtomicU64>,
    ) -> Option<Result<u64>> {
        let tls = self.shared.tls.as_ref()?;
        let secs = self.shared.config.data_connection_timeout;
        let (done, outcome) = tokio::sync::oneshot::channel();
        let claim = Claim {
            direction,
            file,
            offset,
            moved: moved.clone(),
            stall: (secs > 0).then(|| Duration::from_secs(secs)),
            done,
        };
        tls.claim(claim).ok()?;
        // An ABOR ends the transfer as `within_data_timeout` does; dropping `outcome` (here,
        // or with this future when libunftp abandons the transfer) stops the data TLS end.
        let finished = tokio::select! {
            finished = outcome => finished,
            () = self.shared.abort_requested() => return Some(Err(super::aborted())),
        };
        Some(match finished {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => Err(self.stalled()),
            Ok(Err(e)) => Err(Error::from(e)),
            Err(_) => Err(Error::from(ErrorKind::ConnectionClosed)),
        })
    }

    /// A protected transfer that is not carried directly: the data TLS end splices its
    /// connection through libunftp's stand-in (an upload is read from there).
    pub(super) fn protected_by_splice(&self) {
        if let Some(tls) = &self.shared.tls {
            tls.release();
        }
    }
}
