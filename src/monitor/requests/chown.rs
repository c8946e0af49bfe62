//! The monitor's answer to `ChownUpload` (`chown_uploads`): an anonymous session's worker
//! hands over the file its upload just created, and the monitor, as root, gives it to
//! `chown_username` with `chown_upload_mode` — vsftpd's `vsf_privop_do_file_chown`.
//!
//! SECURITY: the worker may be compromised and would love root to chown something else (a
//! file it linked in from elsewhere, a directory, a device). So the monitor resolves no path:
//! it changes only the descriptor it was handed, and only when that is a regular file on the
//! jail's filesystem, owned by the anonymous account, with a single link. A session that is not
//! anonymous, or runs without `chown_uploads`, may not ask at all. Anything else ends the
//! session. Root, one thread.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::{Monitor, Peer};
use crate::config::Config;
use crate::protocol::monitor::{Grant, Reply};

/// What a `ChownUpload` of this session must match; set at an anonymous login with
/// `chown_uploads`, and only then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AnonymousUploads {
    /// The anonymous account (`ftp_username`): the owner of every file its uploads create.
    uid: u32,
    /// The filesystem of the jail root.
    jail_dev: u64,
}

impl AnonymousUploads {
    /// For an accepted login: `Some` only for an anonymous one with `chown_uploads` on.
    pub(super) fn for_login(
        config: &Config,
        grant: &Grant,
        jail: &OwnedFd,
    ) -> std::io::Result<Option<AnonymousUploads>> {
        if !(grant.anonymous && config.chown_uploads) {
            return Ok(None);
        }
        let jail_dev = File::from(jail.try_clone()?).metadata()?.dev();
        Ok(Some(AnonymousUploads {
            uid: grant.uid,
            jail_dev,
        }))
    }

    /// Why `file` must not be given away, if it must not.
    fn refusal(&self, meta: &std::fs::Metadata) -> Option<String> {
        if !meta.file_type().is_file() {
            return Some("not a regular file".into());
        }
        if meta.uid() != self.uid {
            return Some(format!(
                "owned by uid {}, not the anonymous account",
                meta.uid()
            ));
        }
        if meta.nlink() != 1 {
            return Some(format!("{} links, not one", meta.nlink()));
        }
        if meta.dev() != self.jail_dev {
            return Some("not on the jail's filesystem".into());
        }
        None
    }
}

/// The handed-over file, if this session may have it given away at all and it is an upload of
/// its own; else why not.
fn admit(
    expected: Option<AnonymousUploads>,
    fd: Option<OwnedFd>,
) -> Result<(File, std::fs::Metadata), String> {
    // SECURITY: only an anonymous session with chown_uploads may ask (vsftpd's rule).
    let Some(expected) = expected else {
        return Err("the session is not anonymous, or chown_uploads is off".into());
    };
    let Some(fd) = fd else {
        return Err("no file came with it".into());
    };
    let file = File::from(fd);
    let meta = file.metadata().map_err(|e| format!("fstat: {e}"))?;
    // SECURITY: the descriptor itself, never a path: only the file this session created.
    if let Some(why) = expected.refusal(&meta) {
        return Err(why);
    }
    Ok((file, meta))
}

impl Monitor<'_> {
    /// Give the handed-over upload to `chown_username` with `chown_upload_mode`.
    pub(super) fn chown_upload(&mut self, fd: Option<OwnedFd>) {
        if let Err(why) = self.try_chown_upload(fd) {
            self.violation = Some(format!("chown_uploads request refused: {why}"));
            return;
        }
        self.reply(Peer::Worker, &Reply::Chowned, None);
    }

    fn try_chown_upload(&self, fd: Option<OwnedFd>) -> Result<(), String> {
        let (file, meta) = admit(self.anonymous_uploads, fd)?;
        let config = self.setup.config;
        let mode = config.chown_upload_mode.0 & 0o777;
        // The worker set the mode as the file's owner (vsftpd's order); one that did not is
        // not obeying the protocol.
        if meta.mode() & 0o7777 != mode {
            return Err(format!(
                "mode 0o{:o}, not chown_upload_mode 0o{mode:o}",
                meta.mode() & 0o7777
            ));
        }
        let owner = match nix::unistd::User::from_name(&config.chown_username) {
            Ok(Some(user)) => user.uid.as_raw(),
            Ok(None) => {
                return Err(format!(
                    "no account {:?} (chown_username)",
                    config.chown_username
                ));
            }
            Err(e) => return Err(format!("cannot look up chown_username: {e}")),
        };
        std::os::unix::fs::fchown(&file, Some(owner), None).map_err(|e| format!("fchown: {e}"))?;
        // SECURITY: the worker could change the mode between the check and the chown (never
        // after: the file is no longer its own). Look again, and set it if it moved (root
        // owns it by default; another chown_username needs CAP_FOWNER for this repair).
        let now = file.metadata().map_err(|e| format!("fstat: {e}"))?.mode() & 0o7777;
        if now != mode {
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| format!("fchmod after a mode change: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_single_linked_regular_file_of_the_anonymous_account_on_the_jail_filesystem_passes() {
        let dir = std::env::temp_dir().join(format!("rftpd-chown-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("upload");
        std::fs::write(&path, b"x").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let fits = AnonymousUploads {
            uid: meta.uid(),
            jail_dev: meta.dev(),
        };
        assert_eq!(fits.refusal(&meta), None);
        let other_uid = AnonymousUploads {
            uid: meta.uid() + 1,
            ..fits
        };
        assert!(other_uid.refusal(&meta).unwrap().contains("owned by"));
        let other_dev = AnonymousUploads {
            jail_dev: meta.dev() + 1,
            ..fits
        };
        assert!(other_dev.refusal(&meta).unwrap().contains("filesystem"));
        std::fs::hard_link(&path, dir.join("link")).unwrap();
        let linked = std::fs::metadata(&path).unwrap();
        assert!(fits.refusal(&linked).unwrap().contains("links"));
        let dir_meta = std::fs::metadata(&dir).unwrap();
        assert!(fits.refusal(&dir_meta).unwrap().contains("regular"));
        std::fs::remove_file(dir.join("link")).unwrap();
        // A session that is not anonymous (or has chown_uploads off) may not ask at all, even
        // for a file that would pass; and a request needs its file.
        let fd = || Some(OwnedFd::from(File::open(&path).unwrap()));
        let refused = admit(None, fd()).unwrap_err();
        assert!(refused.contains("not anonymous"), "{refused}");
        assert!(admit(Some(fits), None).unwrap_err().contains("no file"));
        assert!(admit(Some(fits), fd()).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
