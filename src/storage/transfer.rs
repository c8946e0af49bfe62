//! Downloads and uploads of the session's storage backend: large buffers, one blocking-pool
//! hop per chunk (a small file costs one), the data-connection timeout on every write, and the
//! protection and rights checks before a byte moves. Runs in the worker, as the user, jailed.

use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use unftp_core::storage::{Error, ErrorKind, Result};

use super::zero_copy;
use super::*;

impl JailedStorage {
    /// RETR: the file at `path` from `start_pos` into `output` (or, by `sendfile`, into the
    /// socket under it: those bytes are counted in `sent_around_output`).
    pub(super) async fn download_into<W>(
        &self,
        path: &Path,
        start_pos: u64,
        output: &mut W,
        sent_around_output: &std::sync::atomic::AtomicU64,
    ) -> Result<u64>
    where
        W: AsyncWrite + Unpin + Sync + Send + ?Sized,
    {
        self.data_connection_arrived();
        let e = self.allow(|r| r.download, path)?;
        let tls_seen = self.check_data_connection(e).await?;
        let path = real_path(path);
        let _transfer = Transfer::start(&self.shared);
        // Open, size and the first chunk on the session's thread: a small file costs no
        // thread switch and a buffer of its own size.
        let (file, size) = on_session_thread(|| {
            let file = std::fs::File::open(&path)?;
            let size = file.metadata()?.len();
            Ok((file, size))
        })?;
        if size.saturating_sub(start_pos) >= zero_copy::MIN_SIZE
            && let Some(socket) = self.plain_data_socket(tls_seen)
        {
            return self
                .send_file(socket, &file, start_pos, sent_around_output)
                .await;
        }
        let (file, first) = on_session_thread(move || {
            let mut buf = vec![0u8; chunk_for(size.saturating_sub(start_pos))];
            let n = file.read_at(&mut buf, start_pos)?;
            buf.truncate(n);
            Ok((Arc::new(file), buf))
        })?;
        let read_at = |file: Arc<std::fs::File>, mut buf: Vec<u8>, offset: u64| {
            offload(move || {
                let n = file.read_at(&mut buf, offset)?;
                buf.truncate(n);
                Ok(buf)
            })
        };
        // Read ahead: the next chunk is read from disk while this one goes to the socket.
        let mut offset = start_pos;
        let mut current = first;
        let mut spare: Vec<u8> = Vec::new();
        while !current.is_empty() {
            offset += current.len() as u64;
            let next = (offset < size).then(|| {
                let mut buf = std::mem::take(&mut spare);
                buf.resize(CHUNK, 0);
                read_at(file.clone(), buf, offset)
            });
            self.within_data_timeout(output.write_all(&current)).await?;
            spare = std::mem::take(&mut current);
            current = match next {
                Some(pending) => pending.await?,
                None => Vec::new(),
            };
        }
        self.within_data_timeout(output.flush()).await?;
        Ok(offset - start_pos)
    }

    /// STOR/APPE/REST+STOR: `input` into the file at `path` from `start_pos`.
    pub(super) async fn upload<R: AsyncRead + Send + Sync + Unpin + 'static>(
        &self,
        mut input: R,
        path: &Path,
        start_pos: u64,
    ) -> Result<u64> {
        self.data_connection_arrived();
        let e = self.allow(|r| r.upload, path)?;
        let path = real_path(path);
        // Without the right to modify, an upload may only create a new file (vsftpd's rule for
        // anonymous uploads): no overwrite, no append, no resume.
        let may_modify = e.rights.modify;
        if !may_modify && start_pos > 0 {
            return Err(denied());
        }
        self.check_data_connection(e).await?;
        let _transfer = Transfer::start(&self.shared);
        let mode = self.shared.config.file_open_mode.0;
        let file = Arc::new(on_session_thread(|| {
            let mut options = std::fs::OpenOptions::new();
            // The kernel applies the process umask (local_umask / anon_umask) to `mode`.
            options.write(true).mode(mode);
            if may_modify {
                options.create(true);
            } else {
                options.create_new(true);
            }
            // A fresh upload truncates at open: an ftruncate() after open would make ext4
            // flush the file at close() (its auto_da_alloc), inside the transfer.
            if start_pos == 0 {
                options.truncate(true);
            }
            let f = options.open(path)?;
            if start_pos > 0 {
                f.set_len(start_pos)?;
            }
            Ok(f)
        })?);
        // Pipeline: the next chunk arrives from the network while this one goes to disk.
        // Small uploads get a small buffer; one that fills it switches to full chunks.
        let mut offset = start_pos;
        let mut want = FIRST_UPLOAD_CHUNK;
        let mut buf = vec![0u8; want];
        let mut in_flight: Option<tokio::task::JoinHandle<io::Result<Vec<u8>>>> = None;
        loop {
            let n = self.within_data_timeout(fill(&mut input, &mut buf)).await?;
            let ended = n < buf.len();
            if !ended {
                want = CHUNK;
            }
            let mut spare = match in_flight.take() {
                Some(h) => h
                    .await
                    .map_err(|e| Error::new(ErrorKind::LocalError, e))?
                    .map_err(Error::from)?,
                None => Vec::new(),
            };
            if n == 0 {
                break;
            }
            if ended {
                // The last (for a small file: the only) chunk: nothing left to overlap with.
                on_session_thread(|| file.write_all_at(&buf[..n], offset))?;
                offset += n as u64;
                break;
            }
            spare.resize(want, 0);
            let f = file.clone();
            let at = offset;
            let data = std::mem::replace(&mut buf, spare);
            in_flight = Some(tokio::task::spawn_blocking(move || {
                f.write_all_at(&data[..n], at)?;
                Ok(data)
            }));
            offset += n as u64;
        }
        Ok(offset - start_pos)
    }
}
