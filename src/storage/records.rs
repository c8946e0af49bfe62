//! What the storage backend tells the monitor for the logs: each transfer (path as the user
//! sees it, bytes moved, duration, finished or not — also when it failed or was aborted
//! halfway) and each directory operation. The worker only reports; the monitor writes.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::protocol::event::{Direction, Event, Op};
use crate::worker::state::SessionShared;

fn path_bytes(path: &Path) -> Vec<u8> {
    path.as_os_str().as_bytes().to_vec()
}

/// One transfer under way: reports itself when finished (`done`) or dropped (aborted).
pub(super) struct TransferRecord {
    shared: Arc<SessionShared>,
    direction: Direction,
    path: Vec<u8>,
    started: Instant,
    pub(super) bytes: Arc<AtomicU64>,
    reported: bool,
}

impl TransferRecord {
    pub(super) fn start(shared: &Arc<SessionShared>, direction: Direction, path: &Path) -> Self {
        TransferRecord {
            shared: shared.clone(),
            direction,
            path: path_bytes(path),
            started: Instant::now(),
            bytes: Arc::new(AtomicU64::new(0)),
            reported: false,
        }
    }

    fn report(&mut self, ok: bool) {
        if self.reported {
            return;
        }
        self.reported = true;
        self.shared.report(Event::Transfer {
            direction: self.direction,
            path: std::mem::take(&mut self.path),
            bytes: self.bytes.load(Ordering::Relaxed),
            micros: self.started.elapsed().as_micros() as u64,
            ascii: self.shared.ascii.load(Ordering::Relaxed),
            ok,
        });
    }

    /// The transfer's outcome, passed through.
    pub(super) fn done<T, E>(mut self, result: Result<T, E>) -> Result<T, E> {
        self.report(result.is_ok());
        result
    }
}

impl Drop for TransferRecord {
    fn drop(&mut self) {
        // Dropped unfinished: libunftp abandoned the transfer (ABOR, connection lost).
        self.report(false);
    }
}

/// A directory operation's outcome, reported and passed through.
pub(super) fn op<T, E>(
    shared: &SessionShared,
    op: Op,
    path: &Path,
    to: Option<&Path>,
    result: Result<T, E>,
) -> Result<T, E> {
    shared.report(Event::Op {
        op,
        path: path_bytes(path),
        to: to.map(path_bytes),
        ok: result.is_ok(),
    });
    result
}

/// A writer or reader that counts the bytes it moves.
pub(super) struct Counting<T> {
    pub(super) inner: T,
    pub(super) count: Arc<AtomicU64>,
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counting<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            self.count.fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counting<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let n = buf.filled().len() - before;
            self.count.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }
}
