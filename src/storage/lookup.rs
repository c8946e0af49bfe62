//! The file queries that need one `stat` and nothing of libunftp's: `SIZE`, `MDTM` (reading)
//! and whether `CWD` may enter a directory. The storage backend's `SITE` handlers use them, and
//! so does the relay, which answers these commands on its own turn when nothing is owed by
//! libunftp (no round trip through it: `crate::worker::relay`).
//!
//! Runs in the worker, as the user, jailed, on the session's own thread. Every path first
//! passes [`refused`], the path half of the storage backend's one gate (`JailedStorage::allow`):
//! never above the root, never a `deny_file` name. It never changes anything.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use unftp_core::storage::{Error, ErrorKind, Result};

use super::facts::timestamp;
use super::{climbs_above_root, denied, real_path};
use crate::names;
use crate::policy::NamePattern;

/// Whether the gate refuses `path` whatever the session's rights: it climbs above the root, or
/// `deny_file` names it (logged).
pub(super) fn refused(deny: &NamePattern, path: &Path) -> bool {
    if climbs_above_root(path) {
        return true;
    }
    if deny.matches_path(path) {
        tracing::info!(path = %names::for_log(&path.to_string_lossy()), "refused by deny_file");
        return true;
    }
    false
}

/// A client's path, relative to the session's (absolute) directory `cwd`, once the gate lets it
/// through (names in their mapped form, `crate::names`).
fn gated(deny: &NamePattern, cwd: &Path, path: &str) -> Result<PathBuf> {
    let path = cwd.join(path);
    if refused(deny, &path) {
        return Err(denied());
    }
    Ok(path)
}

/// The metadata of a regular file (vsftpd's `SIZE` and `MDTM` refuse anything else).
fn regular_file(deny: &NamePattern, cwd: &Path, path: &str) -> Result<std::fs::Metadata> {
    let path = gated(deny, cwd, path)?;
    let meta = std::fs::metadata(real_path(&path)).map_err(Error::from)?;
    if !meta.is_file() {
        return Err(Error::from(ErrorKind::PermanentFileNotAvailable));
    }
    Ok(meta)
}

/// `SIZE path`: the size of a regular file.
pub fn file_size(deny: &NamePattern, cwd: &Path, path: &str) -> Result<u64> {
    Ok(regular_file(deny, cwd, path)?.len())
}

/// `MDTM path`: the modification time of a regular file, `YYYYMMDDHHMMSS` in UTC.
pub fn file_mtime(deny: &NamePattern, cwd: &Path, path: &str) -> Result<String> {
    let meta = regular_file(deny, cwd, path)?;
    Ok(timestamp(meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
}

/// `CWD`: whether the session may enter `dir` (an absolute session path): a directory it can
/// search. The worker's own `chdir` answers both in one system call, as vsftpd's does; the
/// process's working directory is otherwise unused (every path the storage backend opens is
/// absolute, inside the jail).
pub fn may_enter(deny: &NamePattern, dir: &Path) -> Result<()> {
    if refused(deny, dir) {
        return Err(denied());
    }
    nix::unistd::chdir(&real_path(dir)).map_err(|errno| match errno {
        nix::errno::Errno::ENOTDIR => Error::from(ErrorKind::PermanentDirectoryNotAvailable),
        nix::errno::Errno::EACCES => Error::from(ErrorKind::PermissionDenied),
        other => Error::from(std::io::Error::from(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_answer_for_regular_files_and_refuse_what_the_gate_refuses() {
        let dir = std::env::temp_dir().join(format!("rftpd-lookup-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.txt"), b"12345").unwrap();
        std::fs::write(dir.join("secret.key"), b"k").unwrap();
        let deny = NamePattern::parse(Some("*.key"));
        let none = NamePattern::default();
        assert_eq!(file_size(&none, &dir, "a.txt").unwrap(), 5);
        assert_eq!(file_size(&none, &dir.join("sub"), "../a.txt").unwrap(), 5);
        assert_eq!(file_mtime(&none, &dir, "a.txt").unwrap().len(), 14);
        // A directory, a missing file, a denied name, a path above the root.
        assert!(file_size(&none, &dir, "sub").is_err());
        assert!(file_mtime(&none, &dir, "missing").is_err());
        assert!(file_size(&none, &dir, "secret.key").is_ok());
        assert!(file_size(&deny, &dir, "secret.key").is_err());
        assert!(file_mtime(&deny, &dir, "secret.key").is_err());
        assert!(file_size(&none, Path::new("/"), "../etc/hostname").is_err());
        // `may_enter` changes the working directory: on a thread with its own (CLONE_FS), so
        // the other tests' relative paths stay where they were.
        let entering = dir.clone();
        std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS).unwrap();
            let dir = entering;
            assert!(may_enter(&none, &dir.join("sub")).is_ok());
            assert_eq!(std::env::current_dir().unwrap(), dir.join("sub"));
            assert!(may_enter(&none, &dir.join("a.txt")).is_err());
            assert!(may_enter(&none, &dir.join("missing")).is_err());
            assert!(may_enter(&NamePattern::parse(Some("sub")), &dir.join("sub")).is_err());
            assert!(may_enter(&none, Path::new("/..")).is_err());
        })
        .join()
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
