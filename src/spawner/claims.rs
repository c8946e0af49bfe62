//! The spawner's side of `max_per_user`: each session's monitor sends one login claim on its
//! own channel; the spawner checks it and passes it to the master, and passes the master's
//! answer back.
//!
//! What it must never do: pass on a second claim of one session, a name that is not a plain
//! name of at most 32 bytes, or a claim with a descriptor attached (each is refused at once);
//! leave a claim unanswered when the master is gone (it is refused: fail closed).

use std::os::fd::AsFd;

use nix::unistd::Pid;

use super::Spawner;
use crate::protocol::spawner::{CLAIM_GRANTED, CLAIM_REFUSED, MAX_RECORD, Report, decode_claim};
use crate::sys;

impl Spawner {
    /// Read the claim a session's monitor sent and pass it to the master; refuse it at once
    /// when it is malformed, a second one, or there is no master to ask.
    pub(super) fn take_claim(&mut self, pid: Pid) {
        let Some(session) = self.children.get_mut(&pid) else {
            return;
        };
        let Some(channel) = &session.claims else {
            return;
        };
        let mut buf = [0u8; MAX_RECORD + 1];
        let claim = match sys::recv_message(channel.as_fd(), &mut buf) {
            Err(e) if e.raw_os_error() == Some(nix::libc::EINTR) => return,
            Ok((0, _)) | Err(_) => {
                session.claims = None;
                return;
            }
            Ok((_, Some(_))) => Err("a file descriptor".to_owned()),
            Ok((len, None)) => decode_claim(&buf[..len]).map_err(|e| e.to_string()),
        };
        let id = session.id;
        // SECURITY: one claim per session, for a plain name; anything else is refused here.
        let claim = match claim {
            Ok(_) if session.claimed => Err("a second claim".to_owned()),
            other => other,
        };
        session.claimed = true;
        match claim {
            Ok(user) if self.channel.is_some() => {
                self.report(Report::Claim { id, user });
                if self.channel.is_none() {
                    // The master has gone away: nobody else will answer.
                    self.answer_claim(id, false);
                }
            }
            Ok(_) => self.answer_claim(id, false),
            Err(why) => {
                tracing::error!(id, %why, "spawner: a bad login claim; refused");
                self.answer_claim(id, false);
            }
        }
    }

    /// Pass the master's answer to the session that claimed.
    pub(super) fn answer_claim(&mut self, id: u64, granted: bool) {
        let Some(session) = self.children.values_mut().find(|s| s.id == id) else {
            return;
        };
        let Some(channel) = &session.claims else {
            return;
        };
        let byte = if granted {
            CLAIM_GRANTED
        } else {
            CLAIM_REFUSED
        };
        if sys::send_message(channel.as_fd(), &[byte], None).is_err() {
            session.claims = None;
        }
    }
}
