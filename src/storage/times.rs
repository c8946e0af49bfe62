//! The control-connection file queries and time changes the relay routes through `SITE`
//! handlers: `SIZE`, `MDTM` (with vsftpd's two-argument form behind `mdtm_write`), `MFMT`,
//! `SITE UTIME` and `MLST`. Runs in the worker, as the user, jailed; every path goes through
//! the same gate (`allow`) as the other commands.
//!
//! SECURITY: setting a time needs `write_enable`, `mdtm_write` and the right to modify files
//! (for anonymous sessions `anon_other_write_enable`), as in vsftpd; it never follows the
//! request outside the session's root (the chroot) and never changes anything but the times.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use unftp_core::storage::{Metadata, Result};

use super::facts::FactContext;
use super::*;

impl JailedStorage {
    /// A client path, relative to the session's (absolute) directory, as the session's
    /// absolute path (names in their mapped form, `crate::names`; `real_path` gives the bytes
    /// on disk). For the commands libunftp hands over without a path of its own (SITE, SIZE,
    /// MDTM, MFMT, MLST).
    pub(super) fn session_path(&self, path: &str) -> PathBuf {
        self.shared.working_dir().join(path)
    }

    /// `SIZE path`: the size of a regular file (vsftpd refuses anything else).
    pub async fn file_size(&self, path: &str) -> Result<u64> {
        self.entered()?;
        lookup::file_size(&self.deny, &self.shared.working_dir(), path)
    }

    /// `MDTM path`: the modification time of a regular file, `YYYYMMDDHHMMSS` in UTC.
    pub async fn file_mtime(&self, path: &str) -> Result<String> {
        self.entered()?;
        lookup::file_mtime(&self.deny, &self.shared.working_dir(), path)
    }

    /// vsftpd's `mdtm_write`: whether `MDTM time path` is a request to set a time.
    pub fn mdtm_write(&self) -> bool {
        self.shared.config.mdtm_write
    }

    /// Whether this session may set modification times at all.
    pub fn may_set_times(&self) -> bool {
        let config = &self.shared.config;
        config.mdtm_write && self.entered().is_ok_and(|e| e.rights.modify)
    }

    /// `MFMT`, `MDTM time path`, `SITE UTIME`: set the modification (and, if given, access)
    /// time of `path`. `regular_only`: vsftpd's MDTM changes only regular files.
    pub async fn set_times(
        &self,
        path: &str,
        modified: SystemTime,
        accessed: Option<SystemTime>,
        regular_only: bool,
    ) -> Result<()> {
        let path = self.session_path(path);
        self.allow(|r| r.modify, &path)?;
        if !self.shared.config.mdtm_write {
            return Err(denied());
        }
        let path = real_path(&path);
        on_session_thread(|| {
            let file = std::fs::File::options().write(false).read(true).open(&path);
            // A file the user may not read can still be the user's to re-date: fall back to
            // the path.
            let meta = std::fs::metadata(&path)?;
            if regular_only && !meta.is_file() {
                return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
            }
            let mut times = std::fs::FileTimes::new().set_modified(modified);
            if let Some(a) = accessed {
                times = times.set_accessed(a);
            }
            match file {
                Ok(f) => f.set_times(times),
                Err(_) => std::fs::File::options()
                    .write(true)
                    .open(&path)?
                    .set_times(times),
            }
        })
    }

    /// `MLST path`: the one fact line for `path` (RFC 3659 §7.2), with the path as given
    /// made absolute.
    pub async fn fact_line(&self, path: &str) -> Result<String> {
        let path = self.session_path(if path.is_empty() { "." } else { path });
        let e = self.allow(|_| true, &path)?;
        let lookup = real_path(&path);
        let (meta, followed, parent) = on_session_thread(|| {
            let meta = fsmeta::stat(&lookup)?;
            let followed = meta
                .is_symlink()
                .then(|| fsmeta::stat_followed(&lookup).ok())
                .flatten();
            let parent = lookup.parent().and_then(|p| fsmeta::stat_followed(p).ok());
            Ok((meta, followed, parent))
        })?;
        let context = FactContext {
            facts: self.shared.mlst_facts(),
            rights: &e.rights,
            asker: &e.asker,
            hide_ids: self.shared.config.hide_ids,
            parent: parent.as_ref(),
        };
        Ok(context.line(&normalized(&path), &meta, followed.as_ref()))
    }
}

/// `/a/./b/../c` → `/a/c` for display (the kernel resolved the real one).
fn normalized(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}
