//! Downloads and uploads of the session's storage backend: large buffers, one blocking-pool
//! hop per chunk (a small file costs one), the data-connection timeout on every write, and the
//! protection and rights checks before a byte moves. Runs in the worker, as the user, jailed.

use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use unftp_core::storage::{Error, ErrorKind, Result};

use super::*;

impl JailedStorage {
    /// RETR: the file at `path` from `start_pos` into `output`.
    pub(super) async fn download_into<W>(
        &self,
        path: &Path,
        start_pos: u64,
        output: &mut W,
    ) -> Result<u64>
    where
        W: AsyncWrite + Unpin + Sync + Send + ?Sized,
    {
        self.data_connection_arrived();
        let e = self.allow(|r| r.download, path)?;
        self.check_data_connection(e)?;
        let path = real_path(path);
        let _transfer = Transfer::start(&self.shared);
        // One trip to the blocking pool opens the file, learns its size and reads the first
        // chunk: a small file costs a single hop and a buffer of its own size.
        let (file, first, size) = blocking(move || {
            let file = std::fs::File::open(path)?;
            let size = file.metadata()?.len();
            let mut buf = vec![0u8; chunk_for(size.saturating_sub(start_pos))];
            let n = file.read_at(&mut buf, start_pos)?;
            buf.truncate(n);
            Ok((Arc::new(file), buf, size))
        })
        .await?;
        let read_at = |file: Arc<std::fs::File>, mut buf: Vec<u8>, offset: u64| {
            blocking(move || {
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
        self.check_data_connection(e)?;
        let _transfer = Transfer::start(&self.shared);
        let mode = self.shared.config.file_open_mode.0;
        let file = Arc::new(
            blocking(move || {
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
            })
            .await?,
        );
        // Pipeline: the next chunk arrives from the network while this one goes to disk.
        // Small uploads get a small buffer; one that fills it switches to full chunks.
        let mut offset = start_pos;
        let mut want = FIRST_UPLOAD_CHUNK;
        let mut buf = vec![0u8; want];
        let mut in_flight: Option<tokio::task::JoinHandle<io::Result<Vec<u8>>>> = None;
        loop {
            let n = self.within_data_timeout(fill(&mut input, &mut buf)).await?;
            if n == buf.len() {
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
