//! File metadata and directory reading for a logged-in session, straight from the kernel.
//!
//! Runs only after the jail and privilege drop, so every path is resolved inside the chroot,
//! as the user. A directory entry that disappears between reading the directory and looking
//! at the entry is skipped (files come and go while users list), never an error, and nothing
//! here panics on a racing filesystem.
//!
//! Paths it is given are the kernel's (raw bytes); names and link targets it returns are in the
//! mapped form of `crate::names` (valid UTF-8, reversible), like every path from libunftp.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use unftp_core::storage::{Error, Metadata, Permissions};

use crate::names;

/// What a listing needs to know about one file.
#[derive(Debug, Clone)]
pub struct FileMeta {
    len: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    links: u64,
    modified: SystemTime,
    is_dir: bool,
    is_file: bool,
    /// Where a symbolic link points (as written in the link).
    target: Option<PathBuf>,
}

impl FileMeta {
    fn from_std(m: &std::fs::Metadata, target: Option<PathBuf>) -> FileMeta {
        FileMeta {
            len: m.len(),
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            links: m.nlink(),
            modified: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            is_dir: m.is_dir(),
            is_file: m.is_file(),
            target,
        }
    }
}

impl Metadata for FileMeta {
    fn len(&self) -> u64 {
        self.len
    }

    fn is_dir(&self) -> bool {
        self.is_dir
    }

    fn is_file(&self) -> bool {
        self.is_file
    }

    fn is_symlink(&self) -> bool {
        self.target.is_some()
    }

    fn modified(&self) -> Result<SystemTime, Error> {
        Ok(self.modified)
    }

    fn gid(&self) -> u32 {
        self.gid
    }

    fn uid(&self) -> u32 {
        self.uid
    }

    fn links(&self) -> u64 {
        self.links
    }

    fn permissions(&self) -> Permissions {
        Permissions(self.mode & 0o7777)
    }

    fn readlink(&self) -> Option<&Path> {
        self.target.as_deref()
    }
}

/// A name or link target from the kernel in the mapped form the rest of the session uses.
fn mapped(raw: PathBuf) -> PathBuf {
    match names::from_fs(raw.as_os_str()) {
        std::borrow::Cow::Borrowed(_) => raw,
        std::borrow::Cow::Owned(text) => PathBuf::from(text),
    }
}

/// `lstat` plus the link target of a symbolic link.
pub fn stat(path: &Path) -> io::Result<FileMeta> {
    let m = std::fs::symlink_metadata(path)?;
    let target = if m.file_type().is_symlink() {
        Some(mapped(std::fs::read_link(path)?))
    } else {
        None
    };
    Ok(FileMeta::from_std(&m, target))
}

/// `stat` (links followed): what a path names.
pub fn stat_followed(path: &Path) -> io::Result<FileMeta> {
    Ok(FileMeta::from_std(&std::fs::metadata(path)?, None))
}

/// Entries from which [`read_dir`] looks at them on two threads: below, a thread costs more
/// than it saves; above, the `fstatat` calls of a 10,000-entry `LIST` or `MLSD` take two cores.
const TWO_THREADS_FROM: usize = 2048;

/// Every entry of a directory with its metadata, skipping entries that vanish meanwhile.
pub fn read_dir(path: &Path) -> io::Result<Vec<(PathBuf, FileMeta)>> {
    let entries = std::fs::read_dir(path)?.collect::<io::Result<Vec<_>>>()?;
    if entries.len() < TWO_THREADS_FROM {
        return look_at(&entries);
    }
    // A scoped thread for the second half (the worker's filter allows threads; they share
    // the directory's descriptor, which each `DirEntry` holds). A thread that cannot be made
    // (RLIMIT_NPROC counts threads) leaves the work to this one.
    let (first, second) = entries.split_at(entries.len() / 2);
    std::thread::scope(|scope| {
        let other = std::thread::Builder::new().spawn_scoped(scope, || look_at(second));
        let mut out = look_at(first)?;
        let rest = match other {
            Ok(thread) => thread
                .join()
                .map_err(|_| io::Error::other("a listing thread panicked"))??,
            Err(_) => look_at(second)?,
        };
        out.extend(rest);
        Ok(out)
    })
}

/// Metadata (and link targets) of `entries`, in their order; vanished entries are skipped.
fn look_at(entries: &[std::fs::DirEntry]) -> io::Result<Vec<(PathBuf, FileMeta)>> {
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        // fstatat on the directory's descriptor: no path walk per entry, links not followed.
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let target = if meta.file_type().is_symlink() {
            match std::fs::read_link(entry.path()) {
                Ok(t) => Some(t),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        out.push((
            mapped(PathBuf::from(entry.file_name())),
            FileMeta::from_std(&meta, target.map(mapped)),
        ));
    }
    Ok(out)
}

/// The names in a directory, without looking at the entries.
pub fn read_names(path: &Path) -> io::Result<Vec<String>> {
    std::fs::read_dir(path)?
        .map(|entry| entry.map(|e| names::from_fs(&e.file_name()).into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_listed_with_their_metadata_and_links_are_not_followed() {
        let dir = std::env::temp_dir().join(format!("rftpd-fsmeta-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), b"12345").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("link")).unwrap();
        let mut entries = read_dir(&dir).unwrap();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0, PathBuf::from("a.txt"));
        assert_eq!(entries[0].1.len(), 5);
        assert!(entries[0].1.is_file() && !entries[0].1.is_symlink());
        assert!(entries[1].1.is_symlink());
        assert_eq!(entries[1].1.readlink(), Some(Path::new("/etc/passwd")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
