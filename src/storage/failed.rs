//! `delete_failed_uploads`: the file of an upload that did not complete is removed, as vsftpd
//! does — whatever went wrong once the file was opened (the data connection lost or reset, an
//! `ABOR`, a write error, a stall past `data_connection_timeout`), appends and resumed uploads
//! included (rftpd opens the file only once its data connection is there).
//! A data connection the client closes normally ends a complete upload (FTP's stream mode has
//! no other end of file).
//!
//! Runs in the worker, as the user, jailed: the path is resolved by the kernel inside the
//! jail, as the user's own `DELE` would be. It must never remove anything but the one path
//! this upload opened, and nothing when the setting is off.

use std::path::PathBuf;

use crate::logging::Escaped;

/// An upload under way: unless marked completed, dropping it removes its file (with
/// `delete_failed_uploads`). Dropped also when libunftp abandons the transfer.
pub(super) struct FailedUpload {
    /// `None` once completed, or when the setting is off.
    path: Option<PathBuf>,
}

impl FailedUpload {
    /// `delete`: `delete_failed_uploads`; `path`: the file the upload opened (in the jail).
    pub(super) fn new(delete: bool, path: PathBuf) -> FailedUpload {
        FailedUpload {
            path: delete.then_some(path),
        }
    }

    /// The upload completed: its file stays.
    pub(super) fn completed(mut self) {
        self.path = None;
    }
}

impl Drop for FailedUpload {
    fn drop(&mut self) {
        let Some(path) = self.path.take() else {
            return;
        };
        let lossy = path.to_string_lossy();
        let shown = Escaped(&lossy);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(path = %shown, "upload failed; file deleted (delete_failed_uploads)")
            }
            Err(e) => tracing::warn!(path = %shown, error = %e,
                "upload failed; cannot delete its file (delete_failed_uploads)"),
        }
    }
}
