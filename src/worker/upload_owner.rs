//! `chown_uploads` from the worker's side: the one monitor service the storage backend of an
//! anonymous session may use — handing over the file an upload just created, so that the
//! monitor (root) gives it to `chown_username` with `chown_upload_mode`.
//!
//! Runs in the worker, as the user, jailed. It can only ask: the monitor checks the file
//! itself (see `monitor::requests::chown`) and ends the session when anything is off. It must
//! never hand over any descriptor but the upload's own file.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;

use crate::protocol::monitor::{Reply, Request};
use crate::worker::state::MonitorClient;

/// A narrow handle on the monitor channel: `ChownUpload` and nothing else.
#[derive(Debug)]
pub struct UploadOwner {
    monitor: Arc<MonitorClient>,
}

impl UploadOwner {
    pub fn new(monitor: Arc<MonitorClient>) -> UploadOwner {
        UploadOwner { monitor }
    }

    /// Ask the monitor to give `file` (just created by this upload) away.
    pub async fn hand_over(&self, file: &File) -> io::Result<()> {
        match self
            .monitor
            .ask_with(&Request::ChownUpload, Some(file.as_fd()))
            .await?
        {
            (Reply::Chowned, None) => Ok(()),
            (other, _) => Err(io::Error::other(format!(
                "the monitor did not give the upload away: {other:?}"
            ))),
        }
    }
}
