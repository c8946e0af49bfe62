//! Downloads and uploads of the session's storage backend: large buffers (a small file costs
//! no blocking-pool hop, a large one a hop per chunk; clear downloads go by `sendfile`, see
//! `zero_copy`), the data-connection timeout on every write, the rate limits (`rate`), `ABOR`,
//! `delete_failed_uploads` (`failed`), `chown_uploads` (the monitor, through `UploadOwner`), and
//! the protection and rights checks before a byte moves. Runs in the worker, as the user, jailed.

use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use unftp_core::storage::{Error, ErrorKind, Result};

use super::failed::FailedUpload;
use super::rate::Pace;
use super::zero_copy;
use super::*;

impl JailedStorage {
    /// The checks and the open of a download (RETR, by `get_into` or `get`): rights, the data
    /// connection's protection, a readable regular file — each refused before the 150 with
    /// vsftpd's words — then vsftpd's 150. The file, its size, and whether the connection is
    /// TLS.
    pub(super) async fn open_download(&self, path: &Path) -> Result<(std::fs::File, u64, bool)> {
        self.data_connection_arrived();
        let e = self
            .allow(|r| r.download, path)
            .map_err(|err| self.refused("550 Permission denied.", err))?;
        let tls_seen = self.check_data_connection(e).await?;
        let shown = path.display().to_string();
        let path = real_path(path);
        // On the session's thread (no thread switch).
        let (file, size) = on_session_thread(|| {
            let file = std::fs::File::open(&path)?;
            let meta = file.metadata()?;
            if !meta.is_file() {
                return Err(io::Error::from(io::ErrorKind::IsADirectory));
            }
            Ok((file, meta.len()))
        })
        .map_err(|err| self.refused("550 Failed to open file.", err))?;
        self.ready(format!(
            "150 Opening {} mode data connection for {} ({size} bytes).",
            self.type_name(),
            listing::wire_name(&shown)
        ));
        Ok((file, size, tls_seen))
    }

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
        let (file, size, tls_seen) = self.open_download(path).await?;
        let _transfer = Transfer::start(&self.shared);
        // local_max_rate / anon_max_rate: paced chunks, and no sendfile (it would send a whole
        // step at once).
        let mut pace = Pace::new(self.max_rate());
        let step = pace.as_ref().map_or(CHUNK, |p| p.chunk(CHUNK));
        // ascii_download_enable with TYPE A: LF becomes CRLF on the wire (vsftpd's rule).
        let mut ascii = (self.shared.config.ascii_download_enable
            && self.shared.ascii.load(std::sync::atomic::Ordering::SeqCst))
        .then_some(false);
        if ascii.is_none()
            && pace.is_none()
            && size.saturating_sub(start_pos) >= zero_copy::MIN_SIZE
            && let Some(socket) = self.plain_data_socket(tls_seen)
        {
            return self
                .send_file(socket, &file, start_pos, sent_around_output)
                .await;
        }
        // The first chunk, also on the session's thread: a small file costs a buffer of its
        // own size and no hop.
        let (file, first) = on_session_thread(move || {
            let mut buf = vec![0u8; chunk_for(size.saturating_sub(start_pos)).min(step)];
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
                buf.resize(step, 0);
                read_at(file.clone(), buf, offset)
            });
            let sent = match ascii.as_mut() {
                Some(after_cr) => {
                    let converted = ascii::to_wire(&current, after_cr);
                    self.within_data_timeout(output.write_all(&converted))
                        .await?;
                    converted.len()
                }
                None => {
                    self.within_data_timeout(output.write_all(&current)).await?;
                    current.len()
                }
            };
            if let Some(pace) = pace.as_mut() {
                self.paced(pace, sent).await?;
            }
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
        let e = self
            .allow(|r| r.upload, path)
            .map_err(|err| self.refused("550 Permission denied.", err))?;
        let path = real_path(path);
        // Without the right to modify, an upload may only create a new file (vsftpd's rule for
        // anonymous uploads): no overwrite, no append, no resume.
        let may_modify = e.rights.modify;
        if !may_modify && start_pos > 0 {
            return Err(self.refused("550 Permission denied.", denied()));
        }
        self.check_data_connection(e).await?;
        let _transfer = Transfer::start(&self.shared);
        let mut pace = Pace::new(self.max_rate());
        let most = pace.as_ref().map_or(CHUNK, |p| p.chunk(CHUNK));
        let mode = self.shared.config.file_open_mode.0;
        let shown = path.clone();
        let file = Arc::new(
            on_session_thread(|| {
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
            .map_err(|err| self.refused("553 Could not create file.", err))?,
        );
        // From here on the upload is this command's: unless it completes, delete_failed_uploads
        // removes it (vsftpd's rule: whatever failed, and however the transfer was left).
        let unfinished = FailedUpload::new(self.shared.config.delete_failed_uploads, shown);
        // chown_uploads (anonymous sessions only): the monitor gives the file away, as vsftpd
        // does, before a byte is written.
        if let Some(owner) = &self.upload_owner {
            // The mode first, by the file's owner (as vsftpd: root needs no CAP_FOWNER then).
            let mode = self.shared.config.chown_upload_mode.0 & 0o777;
            on_session_thread(|| {
                file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
            })
            .map_err(|err| self.refused("553 Could not create file.", err))?;
            owner
                .hand_over(&file)
                .await
                .map_err(|err| self.refused("553 Could not create file.", Error::from(err)))?;
        }
        self.ready("150 Ok to send data.".into());
        // ascii_upload_enable with TYPE A: CRLF becomes LF on disk (vsftpd's rule).
        let mut ascii = (self.shared.config.ascii_upload_enable
            && self.shared.ascii.load(std::sync::atomic::Ordering::SeqCst))
        .then_some(false);
        // Pipeline: the next chunk arrives from the network while this one goes to disk.
        // Small uploads get a small buffer; one that fills it switches to full chunks.
        let mut offset = start_pos;
        let mut want = FIRST_UPLOAD_CHUNK.min(most);
        let mut buf = vec![0u8; want];
        let mut in_flight: Option<tokio::task::JoinHandle<io::Result<Vec<u8>>>> = None;
        loop {
            let n = self.within_data_timeout(fill(&mut input, &mut buf)).await?;
            let ended = n < buf.len();
            if !ended {
                want = most;
            }
            if let Some(pace) = pace.as_mut() {
                self.paced(pace, n).await?;
            }
            let mut spare = match in_flight.take() {
                Some(h) => h
                    .await
                    .map_err(|e| Error::new(ErrorKind::LocalError, e))?
                    .map_err(Error::from)?,
                None => Vec::new(),
            };
            if n == 0 {
                if ascii == Some(true) {
                    // A CR that ended the upload was data.
                    on_session_thread(|| file.write_all_at(b"\r", offset))?;
                    offset += 1;
                }
                break;
            }
            if ended {
                // The last (for a small file: the only) chunk, on the session's thread: nothing
                // is left to overlap with.
                let last: std::borrow::Cow<'_, [u8]> = match ascii.as_mut() {
                    Some(pending_cr) => {
                        let mut out = ascii::from_wire(&buf[..n], pending_cr);
                        if *pending_cr {
                            // The input ends here: a CR that ended it was data.
                            out.push(b'\r');
                        }
                        out.into()
                    }
                    None => (&buf[..n]).into(),
                };
                on_session_thread(|| file.write_all_at(&last, offset))?;
                offset += last.len() as u64;
                break;
            }
            spare.resize(want, 0);
            let f = file.clone();
            let at = offset;
            let mut data = std::mem::replace(&mut buf, spare);
            let n = match ascii.as_mut() {
                Some(pending_cr) => {
                    data = ascii::from_wire(&data[..n], pending_cr);
                    data.len()
                }
                None => n,
            };
            in_flight = Some(tokio::task::spawn_blocking(move || {
                f.write_all_at(&data[..n], at)?;
                Ok(data)
            }));
            offset += n as u64;
        }
        unfinished.completed();
        Ok(offset - start_pos)
    }
}

/// vsftpd's line-ending conversions for `TYPE A` (with ascii_upload_enable /
/// ascii_download_enable).
mod ascii {
    /// Disk → wire: every LF not already preceded by a CR becomes CRLF. `after_cr` carries
    /// "the last byte sent was a CR" across chunks.
    pub fn to_wire(data: &[u8], after_cr: &mut bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + data.len() / 16 + 1);
        for &b in data {
            if b == b'\n' && !*after_cr {
                out.push(b'\r');
            }
            out.push(b);
            *after_cr = b == b'\r';
        }
        out
    }

    /// Wire → disk: a CR directly followed by LF is dropped. `pending_cr` carries a CR that
    /// ended the previous chunk (not yet written).
    pub fn from_wire(data: &[u8], pending_cr: &mut bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 1);
        for &b in data {
            if *pending_cr {
                *pending_cr = false;
                if b != b'\n' {
                    out.push(b'\r');
                }
            }
            if b == b'\r' {
                *pending_cr = true;
            } else {
                out.push(b);
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn line_endings_convert_both_ways_across_chunks() {
            let mut cr = false;
            assert_eq!(to_wire(b"a\nb\r\nc\r", &mut cr), b"a\r\nb\r\nc\r");
            assert_eq!(to_wire(b"\nd", &mut cr), b"\nd");
            let mut pending = false;
            assert_eq!(from_wire(b"a\r\nb\r", &mut pending), b"a\nb");
            assert!(pending);
            assert_eq!(from_wire(b"\nc\rd", &mut pending), b"\nc\rd");
            assert!(!pending);
        }
    }
}
