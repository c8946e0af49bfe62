//! The session's storage backend: a lazy wrapper around `unftp_sbe_fs::Filesystem`.
//!
//! It holds no directory handle until `enter`, where it jails and drops the process (see
//! `crate::jail`) and only then opens the filesystem at `/`. It enforces what a session may do
//! (`write_enable`, `download_enable`, `dirlist_enable`), applies `local_umask` and
//! `file_open_mode`, formats listings, and does its own large-buffer transfers. After `enter`
//! every path is resolved by the kernel inside the chroot, as the user — never as root.

use std::fmt::Debug;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use unftp_core::storage::{
    Error, ErrorKind, FEATURE_RESTART, Fileinfo, Metadata, Result, StorageBackend,
};
use unftp_sbe_fs::{Filesystem, Meta};

use crate::jail;
use crate::session::ExitReason;
use crate::session::authenticator::SessionUser;
use crate::session::listing::{OwnerNames, format_entry};
use crate::session::worker::SessionShared;

/// Transfer chunk: large enough that the blocking-pool hop per chunk costs little.
const CHUNK: usize = 1 << 20;

/// vsftpd's reply, word for word but for the program name; users and scripts search for it.
const WRITABLE_ROOT_REFUSAL: &str =
    "500 OOPS: rftpd: refusing to run with writable root inside chroot()\r\n";

#[derive(Debug)]
pub struct JailedStorage {
    shared: Arc<SessionShared>,
    /// `None` until `enter` has jailed the process.
    inner: Option<Filesystem>,
    owners: Option<OwnerNames>,
}

impl JailedStorage {
    pub fn new(shared: Arc<SessionShared>) -> Self {
        JailedStorage {
            shared,
            inner: None,
            owners: None,
        }
    }

    fn fs(&self) -> Result<&Filesystem> {
        self.inner
            .as_ref()
            .ok_or_else(|| Error::from(ErrorKind::PermissionDenied))
    }

    fn allow_write(&self) -> Result<()> {
        if self.shared.config.write_enable {
            Ok(())
        } else {
            Err(Error::from(ErrorKind::PermissionDenied))
        }
    }

    fn allow_download(&self) -> Result<()> {
        if self.shared.config.download_enable {
            Ok(())
        } else {
            Err(Error::from(ErrorKind::PermissionDenied))
        }
    }

    fn allow_dirlist(&self) -> Result<()> {
        if self.shared.config.dirlist_enable {
            Ok(())
        } else {
            Err(Error::from(ErrorKind::PermissionDenied))
        }
    }

    /// Send vsftpd's writable-root refusal on the control connection and end the process.
    fn refuse_writable_root(&self, user: &str) -> ! {
        tracing::warn!(
            user,
            "refusing session: jail root is writable by the user and allow_writeable_chroot = false"
        );
        let mut control = std::fs::File::from(
            self.shared
                .control
                .try_clone()
                .unwrap_or_else(|_| std::process::exit(ExitReason::Refused as i32)),
        );
        let _ = io::Write::write_all(&mut control, WRITABLE_ROOT_REFUSAL.as_bytes());
        std::process::exit(ExitReason::Refused as i32);
    }
}

/// Paths from libunftp are absolute in the session's view; after the jail that view is the
/// process's own root, so they are used as they are.
fn real_path(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        Path::new("/").join(path)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Error::from),
        Err(e) => Err(Error::new(ErrorKind::LocalError, e)),
    }
}

/// Read until `buf` is full or the input ends.
async fn fill<R: AsyncRead + Unpin>(input: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = input.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

#[async_trait]
impl StorageBackend<SessionUser> for JailedStorage {
    type Metadata = Meta;

    fn enter(&mut self, user: &SessionUser) -> io::Result<()> {
        if self.inner.is_some() {
            tracing::error!("second login in one session; aborting");
            std::process::abort();
        }
        let granted = self
            .shared
            .grant
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some((grant, dir)) = granted else {
            tracing::error!("enter without a login granted by the monitor; aborting");
            std::process::abort();
        };
        jail::enter(&grant, dir);
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
            self.shared.config.local_umask.0,
        ));
        if grant.jailed && !self.shared.config.allow_writeable_chroot && jail::root_is_writable() {
            self.refuse_writable_root(&user.name);
        }
        match Filesystem::new("/") {
            Ok(fs) => self.inner = Some(fs),
            Err(e) => {
                tracing::error!(error = %e, "cannot open the session's root; aborting");
                std::process::abort();
            }
        }
        self.owners = Some(OwnerNames {
            uid: grant.uid,
            user: grant.user_name,
            gid: grant.gid,
            group: grant.group_name,
            hide_ids: self.shared.config.hide_ids,
        });
        Ok(())
    }

    fn supported_features(&self) -> u32 {
        FEATURE_RESTART
    }

    async fn metadata<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &SessionUser,
        path: P,
    ) -> Result<Meta> {
        self.fs()?.metadata(user, path).await
    }

    async fn list<P>(&self, user: &SessionUser, path: P) -> Result<Vec<Fileinfo<PathBuf, Meta>>>
    where
        P: AsRef<Path> + Send + Debug,
    {
        self.allow_dirlist()?;
        self.fs()?.list(user, path).await
    }

    async fn list_fmt<P>(
        &self,
        user: &SessionUser,
        path: P,
    ) -> std::result::Result<io::Cursor<Vec<u8>>, Error>
    where
        P: AsRef<Path> + Send + Debug,
    {
        let path = path.as_ref().to_path_buf();
        let owners = self
            .owners
            .clone()
            .ok_or_else(|| Error::from(ErrorKind::PermissionDenied))?;
        // LIST of a file lists that one file.
        let meta = self.metadata(user, &path).await?;
        let entries = if meta.is_dir() {
            self.list(user, &path).await?
        } else {
            self.allow_dirlist()?;
            let name = path
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| path.clone());
            vec![Fileinfo {
                path: name,
                metadata: meta,
            }]
        };
        let now = SystemTime::now();
        let mut out = String::with_capacity(entries.len() * 64);
        for entry in &entries {
            let name = entry
                .path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            out.push_str(&format_entry(&name, &entry.metadata, &owners, now));
            out.push_str("\r\n");
        }
        Ok(io::Cursor::new(out.into_bytes()))
    }

    async fn get_into<'a, P, W: ?Sized>(
        &self,
        _user: &SessionUser,
        path: P,
        start_pos: u64,
        output: &'a mut W,
    ) -> Result<u64>
    where
        W: AsyncWrite + Unpin + Sync + Send,
        P: AsRef<Path> + Send + Debug,
    {
        self.allow_download()?;
        self.fs()?;
        let path = real_path(path.as_ref());
        let file = Arc::new(blocking(move || std::fs::File::open(path)).await?);
        let read_at = |file: Arc<std::fs::File>, mut buf: Vec<u8>, offset: u64| {
            blocking(move || {
                let n = file.read_at(&mut buf, offset)?;
                Ok((buf, n))
            })
        };
        // Read ahead: the next chunk is read from disk while this one goes to the socket.
        let mut offset = start_pos;
        let mut pending = read_at(file.clone(), vec![0u8; CHUNK], offset);
        let mut spare = vec![0u8; CHUNK];
        loop {
            let (buf, n) = pending.await?;
            if n == 0 {
                break;
            }
            offset += n as u64;
            pending = read_at(file.clone(), std::mem::take(&mut spare), offset);
            output.write_all(&buf[..n]).await.map_err(Error::from)?;
            spare = buf;
            spare.resize(CHUNK, 0);
        }
        output.flush().await.map_err(Error::from)?;
        Ok(offset - start_pos)
    }

    async fn get<P: AsRef<Path> + Send + Debug>(
        &self,
        _user: &SessionUser,
        path: P,
        start_pos: u64,
    ) -> Result<Box<dyn AsyncRead + Send + Sync + Unpin>> {
        self.allow_download()?;
        self.fs()?;
        let path = real_path(path.as_ref());
        let file = blocking(move || {
            let mut f = std::fs::File::open(path)?;
            io::Seek::seek(&mut f, io::SeekFrom::Start(start_pos))?;
            Ok(f)
        })
        .await?;
        Ok(Box::new(tokio::io::BufReader::with_capacity(
            CHUNK,
            tokio::fs::File::from_std(file),
        )))
    }

    async fn put<P: AsRef<Path> + Send + Debug, R: AsyncRead + Send + Sync + Unpin + 'static>(
        &self,
        _user: &SessionUser,
        mut input: R,
        path: P,
        start_pos: u64,
    ) -> Result<u64> {
        self.allow_write()?;
        self.fs()?;
        let path = real_path(path.as_ref());
        let mode = self.shared.config.file_open_mode.0;
        let file = Arc::new(
            blocking(move || {
                // The kernel applies the process umask (local_umask) to `mode`.
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .mode(mode)
                    .open(path)?;
                f.set_len(start_pos)?;
                Ok(f)
            })
            .await?,
        );
        // Pipeline: the next chunk arrives from the network while this one goes to disk.
        let mut offset = start_pos;
        let mut buf = vec![0u8; CHUNK];
        let mut in_flight: Option<tokio::task::JoinHandle<io::Result<Vec<u8>>>> = None;
        loop {
            let n = fill(&mut input, &mut buf).await.map_err(Error::from)?;
            let spare = match in_flight.take() {
                Some(h) => h
                    .await
                    .map_err(|e| Error::new(ErrorKind::LocalError, e))?
                    .map_err(Error::from)?,
                None => vec![0u8; CHUNK],
            };
            if n == 0 {
                break;
            }
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

    async fn del<P: AsRef<Path> + Send + Debug>(&self, user: &SessionUser, path: P) -> Result<()> {
        self.allow_write()?;
        self.fs()?.del(user, path).await
    }

    async fn mkd<P: AsRef<Path> + Send + Debug>(&self, user: &SessionUser, path: P) -> Result<()> {
        self.allow_write()?;
        self.fs()?.mkd(user, path).await
    }

    async fn rename<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &SessionUser,
        from: P,
        to: P,
    ) -> Result<()> {
        self.allow_write()?;
        self.fs()?.rename(user, from, to).await
    }

    async fn rmd<P: AsRef<Path> + Send + Debug>(&self, user: &SessionUser, path: P) -> Result<()> {
        self.allow_write()?;
        self.fs()?.rmd(user, path).await
    }

    async fn cwd<P: AsRef<Path> + Send + Debug>(&self, user: &SessionUser, path: P) -> Result<()> {
        self.fs()?.cwd(user, path).await
    }
}
