//! Protected (`PROT P`) downloads and uploads carried straight between the file and the
//! client's TLS, on the data TLS thread (`worker::datatls`), instead of through libunftp's
//! stand-in connection: every byte saves a trip through a loopback socket pair (two kernel
//! copies and the TCP work of both ends — most of a TLS transfer's CPU time here).
//!
//! After a data connection's handshake, `datatls` offers the connection ([`Offer`]); the
//! storage layer, once it has made every check of a `RETR`/`STOR` (rights, protection, the
//! open of the file), claims it with the open file ([`Claim`]); anything else (a listing, an
//! `ASCII` transfer, a refusal) leaves the connection to the ordinary splice. Downloads end
//! with `close_notify` before the storage layer returns (so before libunftp's `226`); an
//! upload ends at the client's `close_notify` or bare FIN (vsftpd's default
//! `strict_ssl_read_eof = NO`) and is answered with `close_notify` once written.
//!
//! It never opens, names or checks a file (the storage layer hands over one it opened as the
//! user, after its checks), and never parses FTP. A transfer whose storage call is abandoned
//! (`ABOR`, the session ending) stops at once.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

/// Plaintext per read from the file, and per read from the client's TLS (64 TLS records).
const CHUNK: usize = 1 << 20;
/// Plaintext rustls may hold encrypted but unsent: a whole chunk, so one `writev` sends it.
pub const SEND_BUFFER: usize = CHUNK + (64 << 10);
/// After a failed upload's file write, how long the rest of the client's data is read.
const DRAIN: Duration = Duration::from_secs(30);

/// What the storage layer hands the data TLS end for one protected transfer.
#[derive(Debug)]
pub struct Claim {
    pub direction: Direction,
    /// The file, opened (and checked) by the storage layer.
    pub file: Arc<File>,
    /// Where in the file the transfer starts.
    pub offset: u64,
    /// Bytes moved so far (the transfer's record reads it, also if the transfer is dropped).
    pub moved: Arc<AtomicU64>,
    /// `data_connection_timeout`: most time one read or write may take (`None`: no bound).
    pub stall: Option<Duration>,
    /// The outcome: bytes moved, or the error (`TimedOut`: a stall).
    pub done: oneshot::Sender<io::Result<u64>>,
}

/// Which way the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// RETR: file → client.
    Download,
    /// STOR/APPE: client → file.
    Upload,
}

/// The storage layer's answer to an offered connection.
#[derive(Debug)]
pub enum Use {
    /// Carry this transfer directly.
    Direct(Claim),
    /// Leave the connection to the splice through libunftp's stand-in.
    Splice,
}

/// One offered connection's channel: the storage layer sends at most one [`Use`].
pub type Offer = oneshot::Sender<Use>;

/// Run a claimed transfer on `tls`; its outcome goes to the claim's `done` (not at all if
/// the claimant has gone: then the connection is dropped without `close_notify`).
pub async fn run<T: AsyncRead + AsyncWrite + Unpin>(mut tls: T, claim: Claim) {
    let Claim {
        direction,
        file,
        offset,
        moved,
        stall,
        mut done,
    } = claim;
    let io = Io { stall };
    let transfer = async {
        match direction {
            Direction::Download => download(&mut tls, &file, offset, &moved, io).await,
            Direction::Upload => upload(&mut tls, file, offset, &moved, io).await,
        }
    };
    let result = tokio::select! {
        r = transfer => r,
        () = done.closed() => return,
    };
    let _ = done.send(result);
}

/// The per-operation stall bound.
#[derive(Clone, Copy)]
struct Io {
    stall: Option<Duration>,
}

impl Io {
    async fn bounded<T>(self, op: impl Future<Output = io::Result<T>>) -> io::Result<T> {
        match self.stall {
            None => op.await,
            Some(limit) => tokio::time::timeout(limit, op)
                .await
                .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into())),
        }
    }
}

/// The file from `offset` to its end, then `close_notify`.
async fn download<T: AsyncWrite + Unpin>(
    tls: &mut T,
    file: &File,
    offset: u64,
    moved: &AtomicU64,
    io: Io,
) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut at = offset;
    loop {
        // The file is in the page cache in the common case; a read here costs less than a
        // thread hop, and this thread serves only this session's data connection.
        let n = read_full_at(file, &mut buf, at)?;
        if n == 0 {
            break;
        }
        io.bounded(tls.write_all(&buf[..n])).await?;
        at += n as u64;
        moved.fetch_add(n as u64, Ordering::Relaxed);
    }
    io.bounded(tls.shutdown()).await?;
    Ok(at - offset)
}

/// Read at `at` until `buf` is full or the file ends.
fn read_full_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], at + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The client's bytes into the file from `offset` until its `close_notify` or FIN, then
/// `close_notify`. The next chunk arrives while the last one is written (on the blocking pool).
async fn upload<T: AsyncRead + AsyncWrite + Unpin>(
    tls: &mut T,
    file: Arc<File>,
    offset: u64,
    moved: &AtomicU64,
    io: Io,
) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut at = offset;
    let mut in_flight: Option<tokio::task::JoinHandle<io::Result<Vec<u8>>>> = None;
    let written = loop {
        let (n, ended) = io.bounded(fill(tls, &mut buf)).await?;
        let spare = match in_flight.take() {
            Some(h) => match h.await.map_err(io::Error::other)? {
                Ok(spare) => spare,
                Err(e) => break Err(e),
            },
            None => vec![0u8; CHUNK],
        };
        if n > 0 {
            let data = std::mem::replace(&mut buf, spare);
            let (f, pos) = (file.clone(), at);
            in_flight = Some(tokio::task::spawn_blocking(move || {
                f.write_all_at(&data[..n], pos)?;
                Ok(data)
            }));
            at += n as u64;
            moved.fetch_add(n as u64, Ordering::Relaxed);
        } else {
            buf = spare;
        }
        if ended {
            if let Some(h) = in_flight.take()
                && let Err(e) = h.await.map_err(io::Error::other)?
            {
                break Err(e);
            }
            break Ok(at - offset);
        }
    };
    if written.is_err() {
        // The file could not take it: the client still gets to finish sending (and reads
        // `close_notify` and the refusal in step), bounded.
        let _ = tokio::time::timeout(DRAIN, tokio::io::copy(tls, &mut tokio::io::sink())).await;
    }
    io.bounded(tls.shutdown()).await?;
    written
}

/// Read until `buf` is full or the input ends: (bytes, ended). A FIN without `close_notify`
/// is an end, as with vsftpd's default `strict_ssl_read_eof = NO`.
async fn fill<R: AsyncRead + Unpin>(input: &mut R, buf: &mut [u8]) -> io::Result<(usize, bool)> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]).await {
            Ok(0) => return Ok((filled, true)),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok((filled, true)),
            Err(e) => return Err(e),
        }
    }
    Ok((filled, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(bytes: &[u8]) -> (std::path::PathBuf, Arc<File>) {
        let path = std::env::temp_dir().join(format!(
            "rftpd-tls-transfer-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, bytes).unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (path, Arc::new(file))
    }

    fn claim(
        direction: Direction,
        file: Arc<File>,
        offset: u64,
    ) -> (Claim, oneshot::Receiver<io::Result<u64>>) {
        let (done, outcome) = oneshot::channel();
        let claim = Claim {
            direction,
            file,
            offset,
            moved: Arc::new(AtomicU64::new(0)),
            stall: Some(Duration::from_secs(5)),
            done,
        };
        (claim, outcome)
    }

    #[tokio::test]
    async fn a_download_sends_the_file_from_its_offset_and_then_ends_the_stream() {
        let content: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let (path, file) = temp_file(&content);
        let (server, mut client) = tokio::io::duplex(64 << 10);
        let (c, outcome) = claim(Direction::Download, file, 5);
        tokio::spawn(run(server, c));
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, content[5..]);
        assert_eq!(outcome.await.unwrap().unwrap(), content.len() as u64 - 5);
        std::fs::remove_file(path).unwrap();
    }

    #[tokio::test]
    async fn an_upload_writes_until_the_client_ends_and_then_ends_its_side() {
        let (path, file) = temp_file(b"keep");
        let content: Vec<u8> = (0..2 * CHUNK + 3).map(|i| (i % 13) as u8).collect();
        let (server, mut client) = tokio::io::duplex(64 << 10);
        let (c, outcome) = claim(Direction::Upload, file, 4);
        tokio::spawn(run(server, c));
        client.write_all(&content).await.unwrap();
        client.shutdown().await.unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        assert_eq!(outcome.await.unwrap().unwrap(), content.len() as u64);
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[..4], b"keep");
        assert_eq!(on_disk[4..], content);
        std::fs::remove_file(path).unwrap();
    }

    #[tokio::test]
    async fn a_download_whose_claimant_has_gone_stops() {
        let (path, file) = temp_file(&vec![7u8; 4 * CHUNK]);
        let (server, mut client) = tokio::io::duplex(1024);
        let (c, outcome) = claim(Direction::Download, file, 0);
        drop(outcome);
        let task = tokio::spawn(run(server, c));
        // Nothing reads much: the transfer would block on writing, but it has no claimant.
        let mut first = [0u8; 16];
        let _ = client.read(&mut first).await;
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the abandoned transfer stops")
            .unwrap();
        std::fs::remove_file(path).unwrap();
    }
}
