//! The session's storage backend: a lazy wrapper around `unftp_sbe_fs::Filesystem`.
//!
//! It runs in the worker, which jailed itself and dropped to the user before it read anything
//! (see `crate::jail`); it holds no directory handle until `enter`, which opens the
//! filesystem at `/`. Every operation passes through
//! one place that decides what this session may do ([`Rights`]: `write_enable`, the anonymous
//! rights, `download_enable`, `dirlist_enable`, `deny_file`), and every data transfer first
//! checks its connection's protection (`force_*_data_ssl`, `require_ssl_reuse`). It applies the
//! umask and `file_open_mode`, hides `hide_file` names and dot files, formats listings, owns the
//! data-connection timeout, and does its own large-buffer transfers. After `enter` every path is
//! resolved by the kernel inside the chroot, as the user — never as root.

use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use unftp_core::storage::{Error, ErrorKind, FEATURE_RESTART, Fileinfo, Result, StorageBackend};
use unftp_sbe_fs::Filesystem;

use crate::names;
use crate::policy::NamePattern;
use crate::protocol::ExitReason;
use crate::protocol::event::{Direction, Op};
use crate::tls::DataHandshake;
use crate::worker::authenticator::SessionUser;
use crate::worker::datatls::{self, DataState};
use crate::worker::state::{DataOutcome, SessionShared};
use crate::worker::upload_owner::UploadOwner;

mod backend;
mod directory;
pub mod facts;
mod failed;
pub mod fsmeta;
pub mod listing;
pub mod lookup;
mod protected;
mod rate;
mod records;
mod times;
mod transfer;
mod zero_copy;

use fsmeta::FileMeta;
use listing::{OwnerNames, format_entry};

/// First buffer of an upload (most uploads are small; large ones switch to `CHUNK`).
const FIRST_UPLOAD_CHUNK: usize = 64 * 1024;

/// Most entries one `LIST -R` walks.
const MAX_RECURSIVE_ENTRIES: usize = 100_000;

/// Transfer chunk: large enough that the blocking-pool hop per chunk costs little.
const CHUNK: usize = 1 << 20;

/// Counts a data transfer as in progress for as long as it lives (the idle timer waits).
struct Transfer<'a>(&'a SessionShared);

impl<'a> Transfer<'a> {
    fn start(shared: &'a SessionShared) -> Transfer<'a> {
        shared.transfer_started();
        shared.transfers.fetch_add(1, Ordering::SeqCst);
        Transfer(shared)
    }
}

impl Drop for Transfer<'_> {
    fn drop(&mut self) {
        self.0.transfers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What the logged-in session may do; decided once at `enter`.
#[derive(Debug, Clone, Default)]
struct Rights {
    upload: bool,
    /// Overwrite, append, resume, delete, rename, remove directories.
    modify: bool,
    mkdir: bool,
    chmod: bool,
    download: bool,
    dirlist: bool,
    /// Whether data connections must be TLS for this session.
    data_tls_required: bool,
}

/// Everything that exists only after login.
#[derive(Debug)]
struct Entered {
    fs: Filesystem,
    umask: u32,
    owners: OwnerNames,
    rights: Rights,
    /// The user's ids, for the `perm` fact.
    asker: facts::Asker,
    /// `local_max_rate` or `anon_max_rate` (bytes per second; 0 = unlimited).
    max_rate: u32,
}

#[derive(Debug)]
pub struct JailedStorage {
    shared: Arc<SessionShared>,
    /// `None` until `enter` has jailed the process.
    entered: Option<Entered>,
    hide: NamePattern,
    deny: NamePattern,
    /// With `chown_uploads`, in an anonymous session: the monitor's one service that gives
    /// a new upload away (nothing else of the monitor channel).
    upload_owner: Option<Arc<UploadOwner>>,
}

fn denied() -> Error {
    Error::from(ErrorKind::PermissionDenied)
}

/// The client sent `ABOR` during the transfer: libunftp answers `426`, then the `ABOR`'s `226`.
fn aborted() -> Error {
    Error::from(ErrorKind::ConnectionClosed)
}

/// Paths from libunftp are absolute in the session's view; after the jail that view is the
/// process's own root, so they are used as they are — with the name bytes that libunftp holds
/// as stand-ins restored (`crate::names`). Every check runs on the path before this.
fn real_path(path: &Path) -> PathBuf {
    let path = names::to_fs(path);
    if path.is_absolute() {
        path.into_owned()
    } else {
        Path::new("/").join(path)
    }
}

/// Whether `..` components take `path` above `/`. The chroot would stop it anyway, but the
/// session's idea of its directory (`PWD`) must not read `/..`, as with vsftpd.
fn climbs_above_root(path: &Path) -> bool {
    let mut depth: i64 = 0;
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => depth -= 1,
            std::path::Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// A short file-system call (open, stat, a directory read, one small read or write), made on
/// the session's own thread. The worker serves exactly one session, so this blocks nobody
/// else (vsftpd makes every call this way), and it saves the two thread switches of a
/// blocking-pool hop — most of the cost of a small file or a `CWD`. Long streams use
/// [`offload`] instead, so that disk and network overlap.
fn on_session_thread<T>(f: impl FnOnce() -> io::Result<T>) -> Result<T> {
    f().map_err(Error::from)
}

/// One step of a long transfer (a read-ahead or write-behind chunk) on the blocking pool.
async fn offload<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Error::from),
        Err(e) => Err(Error::new(ErrorKind::LocalError, e)),
    }
}

/// The last component of a listed entry's path, for display.
/// (Names read from a directory are already in the mapped form of `crate::names`: valid
/// UTF-8, so nothing is lost here.)
fn entry_name(entry: &Fileinfo<PathBuf, FileMeta>) -> std::borrow::Cow<'_, str> {
    entry
        .path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default()
}

/// Buffer for reading `remaining` bytes: the whole rest of a small file, at most `CHUNK`.
fn chunk_for(remaining: u64) -> usize {
    usize::try_from(remaining).unwrap_or(CHUNK).clamp(1, CHUNK)
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

impl JailedStorage {
    pub fn new(shared: Arc<SessionShared>, upload_owner: Option<Arc<UploadOwner>>) -> Self {
        let hide = NamePattern::parse(shared.config.hide_file.as_deref());
        let deny = NamePattern::parse(shared.config.deny_file.as_deref());
        JailedStorage {
            shared,
            entered: None,
            hide,
            deny,
            upload_owner,
        }
    }

    /// The session's transfer rate limit in bytes per second (0 = none).
    fn max_rate(&self) -> u32 {
        self.entered.as_ref().map_or(0, |e| e.max_rate)
    }

    /// Wait as `pace` asks after `bytes` moved; an `ABOR` ends the wait and the transfer.
    async fn paced(&self, pace: &mut rate::Pace, bytes: usize) -> Result<()> {
        tokio::select! {
            () = pace.moved(bytes) => Ok(()),
            () = self.shared.abort_requested() => Err(aborted()),
        }
    }

    fn entered(&self) -> Result<&Entered> {
        self.entered.as_ref().ok_or_else(denied)
    }

    /// The one gate: is this session allowed `right` on `path`?
    fn allow(&self, right: impl Fn(&Rights) -> bool, path: &Path) -> Result<&Entered> {
        let entered = self.entered()?;
        if !right(&entered.rights) {
            return Err(denied());
        }
        if lookup::refused(&self.deny, path) {
            return Err(denied());
        }
        Ok(entered)
    }

    /// Called first by every operation that libunftp runs on a data connection: one has
    /// arrived (for the relay's `accept_timeout`).
    fn data_connection_arrived(&self) {
        self.shared.data_connections.fetch_add(1, Ordering::SeqCst);
    }

    /// A data connection is about to carry data: refuse it if it is not protected as required,
    /// or if its TLS handshake failed (waiting for the handshake first: `worker::datatls`).
    /// `Ok(true)`: it is a TLS connection.
    async fn check_data_connection(&self, entered: &Entered) -> Result<bool> {
        let Some(tls) = &self.shared.tls else {
            return Ok(false);
        };
        match tls.outcome().await {
            DataState::None | DataState::Plain if entered.rights.data_tls_required => {
                tracing::warn!(
                    "plain-text data connection refused (force_local_data_ssl / force_anon_data_ssl)"
                );
                Err(self.refused("522 Data connections must be encrypted.", denied()))
            }
            DataState::Tls(DataHandshake::Full) if self.shared.config.require_ssl_reuse => {
                tracing::warn!(
                    "data connection TLS did not resume the control session (require_ssl_reuse)"
                );
                Err(self.refused(
                    datatls::REUSE_REQUIRED,
                    Error::from(ErrorKind::PageTypeUnknown),
                ))
            }
            DataState::Failed | DataState::Pending => Err(self.refused(
                datatls::HANDSHAKE_FAILED,
                Error::from(ErrorKind::PageTypeUnknown),
            )),
            seen => Ok(matches!(seen, DataState::Tls(_))),
        }
    }

    /// The transfer now reaching the storage backend is refused before a byte moved: the
    /// relay sends `reply` instead of libunftp's `150` and error. Returns `err` for libunftp.
    fn refused(&self, reply: &'static str, err: Error) -> Error {
        self.shared.report_data(DataOutcome::Refused(reply));
        err
    }

    /// The transfer starts: the relay lets the `150` through, in these words.
    fn ready(&self, preliminary: String) {
        self.shared.report_data(DataOutcome::Ready(preliminary));
    }

    /// `ASCII` or `BINARY`, as vsftpd's `150` names the type in force.
    fn type_name(&self) -> &'static str {
        if self.shared.ascii.load(Ordering::SeqCst) {
            "ASCII"
        } else {
            "BINARY"
        }
    }

    fn visible(&self, name: &str) -> bool {
        !self.hide.matches_name(name)
    }

    /// Dot files appear with `force_dot_files` or when the client asked (`LIST -a`).
    fn visible_in_listing(&self, name: &str, all: bool) -> bool {
        self.visible(name) && (self.shared.config.force_dot_files || all || !name.starts_with('.'))
    }

    /// Network I/O of a transfer, bounded by `data_connection_timeout`: a transfer that moves
    /// no byte for that long ends the session with vsftpd's reply.
    /// An `ABOR` during the transfer ends it (see `SessionShared::request_abort`).
    async fn within_data_timeout<T>(&self, io: impl Future<Output = io::Result<T>>) -> Result<T> {
        let secs = self.shared.config.data_connection_timeout;
        let limit = match secs {
            0 => Duration::MAX,
            secs => Duration::from_secs(secs),
        };
        let timed = tokio::select! {
            timed = tokio::time::timeout(limit, io) => timed,
            () = self.shared.abort_requested() => return Err(aborted()),
        };
        match timed {
            Ok(r) => r.map_err(Error::from),
            Err(_) => Err(self.stalled()),
        }
    }

    /// A transfer moved no byte for `data_connection_timeout`: the session ends with vsftpd's
    /// reply.
    fn stalled(&self) -> Error {
        tracing::info!(
            seconds = self.shared.config.data_connection_timeout,
            "data connection stalled; ending the session"
        );
        self.shared
            .end_session("421 Data timeout. Reconnect. Sorry.", ExitReason::Timeout);
        Error::from(ErrorKind::ConnectionClosed)
    }

    /// A directory's entries as `Fileinfo`s (vanished entries skipped).
    async fn read_dir(&self, path: &Path) -> Result<Vec<Fileinfo<PathBuf, FileMeta>>> {
        let path = real_path(path);
        let entries = on_session_thread(|| fsmeta::read_dir(&path))?;
        Ok(entries
            .into_iter()
            .map(|(path, metadata)| Fileinfo { path, metadata })
            .collect())
    }

    /// The umask in force for this session (0 before login).
    pub fn umask(&self) -> u32 {
        self.entered.as_ref().map_or(0, |e| e.umask)
    }

    /// `SITE CHMOD mode path`.
    pub async fn chmod(&self, mode: u32, path: &str) -> Result<()> {
        let path = self.session_path(path);
        let result = async {
            self.allow(|r| r.chmod, &path)?;
            let path = real_path(&path);
            // SECURITY: permission bits only, never setuid/setgid/sticky (vsftpd masks the same).
            let mode = mode & 0o777;
            on_session_thread(|| {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            })
        }
        .await;
        records::op(&self.shared, Op::Chmod, &real_path(&path), None, result)
    }

    fn rights_for(&self, anonymous: bool) -> Rights {
        let c = &self.shared.config;
        let (upload, modify, mkdir, chmod) = if anonymous {
            (
                c.write_enable && c.anon_upload_enable,
                c.write_enable && c.anon_other_write_enable,
                c.write_enable && c.anon_mkdir_write_enable,
                false,
            )
        } else {
            (
                c.write_enable,
                c.write_enable,
                c.write_enable,
                c.write_enable && c.chmod_enable,
            )
        };
        Rights {
            upload,
            modify,
            mkdir,
            chmod,
            download: c.download_enable,
            dirlist: c.dirlist_enable,
            data_tls_required: c.ssl_enable
                && if anonymous {
                    c.force_anon_data_ssl
                } else {
                    c.force_local_data_ssl
                },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_climb_above_the_root_are_recognised() {
        for p in ["/..", "..", "/a/../..", "/../../../etc/..", "a/../../b"] {
            assert!(climbs_above_root(Path::new(p)), "{p}");
        }
        for p in ["/", "/a/..", "/a/b/../c", "a/.."] {
            assert!(!climbs_above_root(Path::new(p)), "{p}");
        }
    }
}
