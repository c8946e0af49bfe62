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
        let path = real_path(path);
        let e = self
            .allow(|r| r.download, &path)
            .map_err(|err| self.refused("550 Permission denied.", err))?;
        self.check_data_connection(e)?;
        let _transfer = Transfer::start(&self.shared);
        let shown = path.display().to_string();
        // One trip to the blocking pool opens the file, learns its size and reads the first
        // chunk: a small file costs a single hop and a buffer of its own size. Anything but a
        // readable regular file is refused before the 150, with vsftpd's words.
        let (file, first, size) = blocking(move || {
            let file = std::fs::File::open(path)?;
            let meta = file.metadata()?;
            if !meta.is_file() {
                return Err(io::Error::from(io::ErrorKind::IsADirectory));
            }
            let size = meta.len();
            let mut buf = vec![0u8; chunk_for(size.saturating_sub(start_pos))];
            let n = file.read_at(&mut buf, start_pos)?;
            buf.truncate(n);
            Ok((Arc::new(file), buf, size))
        })
        .await
        .map_err(|err| self.refused("550 Failed to open file.", err))?;
        self.ready(format!(
            "150 Opening {} mode data connection for {} ({size} bytes).",
            self.type_name(),
            listing::wire_name(&shown)
        ));
        // ascii_download_enable with TYPE A: LF becomes CRLF on the wire (vsftpd's rule).
        let mut ascii = (self.shared.config.ascii_download_enable
            && self.shared.ascii.load(std::sync::atomic::Ordering::SeqCst))
        .then_some(false);
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
            match ascii.as_mut() {
                Some(after_cr) => {
                    let converted = ascii::to_wire(&current, after_cr);
                    self.within_data_timeout(output.write_all(&converted))
                        .await?;
                }
                None => self.within_data_timeout(output.write_all(&current)).await?,
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
        let path = real_path(path);
        let e = self
            .allow(|r| r.upload, &path)
            .map_err(|err| self.refused("550 Permission denied.", err))?;
        // Without the right to modify, an upload may only create a new file (vsftpd's rule for
        // anonymous uploads): no overwrite, no append, no resume.
        let may_modify = e.rights.modify;
        if !may_modify && start_pos > 0 {
            return Err(self.refused("550 Permission denied.", denied()));
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
            .await
            .map_err(|err| self.refused("553 Could not create file.", err))?,
        );
        self.ready("150 Ok to send data.".into());
        // ascii_upload_enable with TYPE A: CRLF becomes LF on disk (vsftpd's rule).
        let mut ascii = (self.shared.config.ascii_upload_enable
            && self.shared.ascii.load(std::sync::atomic::Ordering::SeqCst))
        .then_some(false);
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
                if ascii == Some(true) {
                    // A CR that ended the upload was data.
                    blocking({
                        let f = file.clone();
                        let at = offset;
                        move || f.write_all_at(b"\r", at)
                    })
                    .await?;
                    offset += 1;
                }
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
