//! Commands the relay answers on its own turn from one file-system call, without a round trip
//! through libunftp: `SIZE`, `MDTM` (reading a time), `CWD` and `CDUP`. Only when libunftp owes
//! no reply (the mirrored working directory is then its own, and the answer cannot overtake
//! one of its replies); otherwise they go to libunftp as before.
//!
//! A `CWD` answered here leaves libunftp one directory behind: before the next command the
//! relay gives libunftp, it gives it a `CWD` to the same directory (its reply dropped; the
//! storage backend takes it as already checked), so every path libunftp joins is the client's.
//!
//! Runs in the worker, as the logged-in user, jailed. Every path goes through the storage
//! backend's gate and lookups (`crate::storage::lookup`): never above the root, never a
//! `deny_file` name. It never changes a file and never answers before the login is entered.

use std::sync::atomic::Ordering;

use crate::policy::NamePattern;
use crate::storage::lookup;
use crate::worker::arguments;
use crate::worker::site::time_and_path;
use crate::worker::state::SessionShared;

/// The relay's own answers, and whether libunftp's working directory is behind.
pub(super) struct Direct {
    deny: NamePattern,
    /// A `CWD` libunftp must be given before its next command.
    catch_up: Option<String>,
}

impl Direct {
    pub(super) fn new(shared: &SessionShared) -> Direct {
        Direct {
            deny: NamePattern::parse(shared.config.deny_file.as_deref()),
            catch_up: None,
        }
    }

    /// The reply to `verb argument`, when the relay gives it itself. The caller asks only
    /// when libunftp owes nothing.
    pub(super) fn answer(
        &mut self,
        shared: &SessionShared,
        verb: &str,
        argument: &str,
    ) -> Option<Vec<u8>> {
        if !shared.logged_in.load(Ordering::SeqCst) {
            return None;
        }
        let cwd = shared.working_dir();
        let text = match verb {
            "SIZE" if !argument.is_empty() => match lookup::file_size(&self.deny, &cwd, argument) {
                Ok(size) => format!("213 {size}"),
                Err(_) => "550 Could not get file size.".to_string(),
            },
            // `MDTM time path` may set a time (`mdtm_write`): the storage backend's handler.
            "MDTM" if !argument.is_empty() && !self.may_set_time(shared, argument) => {
                match lookup::file_mtime(&self.deny, &cwd, argument) {
                    Ok(time) => format!("213 {time}"),
                    Err(_) => "550 Could not get file modification time.".to_string(),
                }
            }
            "CWD" | "CDUP" if verb == "CDUP" || !argument.is_empty() => {
                let target =
                    arguments::absolute_cwd(&cwd, if verb == "CDUP" { ".." } else { argument });
                let dir = std::path::PathBuf::from(&target);
                match lookup::may_enter(&self.deny, &dir) {
                    Ok(()) => {
                        shared.entered_on_relay_turn(dir);
                        self.catch_up = Some(format!("CWD {target}"));
                        "250 Directory successfully changed.".to_string()
                    }
                    Err(_) => "550 Failed to change directory.".to_string(),
                }
            }
            _ => return None,
        };
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"\r\n");
        Some(bytes)
    }

    /// Whether `MDTM argument` may be a request to set a time (`mdtm_write` and a `time path`
    /// argument): that is the storage backend's handler's to decide.
    fn may_set_time(&self, shared: &SessionShared, argument: &str) -> bool {
        shared.config.mdtm_write && time_and_path(argument).is_some()
    }

    /// The `CWD` libunftp must be given before the next command it gets, if any (once).
    pub(super) fn catch_up(&mut self) -> Option<String> {
        self.catch_up.take()
    }
}
