//! How many commands the relay gave libunftp that it has not answered yet. The relay gives
//! libunftp one command at a time (but during a transfer), as vsftpd reads them: libunftp
//! handles pipelined commands out of order (a `CWD`'s reply comes through an internal channel
//! its loop may serve after the next command) and can stall on two pipelined `CWD`s (that
//! channel holds one message). And the relay answers a command itself (the working directory,
//! `PWD`) only when that cannot overtake a reply still to come from libunftp.
//!
//! It never reorders or drops a line; a miscount (libunftp answering a command twice, as for
//! `ABOR` during a transfer, or not at all) costs at most one bounded wait.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Commands forwarded to libunftp minus the final replies passed on to the client.
#[derive(Debug, Default)]
pub struct Unanswered {
    owed: AtomicUsize,
    /// Of those, the commands the relay gave libunftp for itself (libunftp catching up on a
    /// `CWD` the relay answered): their replies are dropped, not passed on.
    silent: AtomicUsize,
    changed: tokio::sync::Notify,
}

impl Unanswered {
    /// A command line went to libunftp.
    pub fn forwarded(&self) {
        self.owed.fetch_add(1, Ordering::SeqCst);
    }

    /// A command line the relay gave libunftp for itself went to it: its reply is not the
    /// client's.
    pub fn forwarded_silently(&self) {
        self.silent.fetch_add(1, Ordering::SeqCst);
        self.forwarded();
    }

    /// Whether `line`, from libunftp, answers a command the relay gave for itself (then it is
    /// dropped); its final line counts as answered.
    pub fn swallows(&self, line: &[u8]) -> bool {
        if self.silent.load(Ordering::SeqCst) == 0 {
            return false;
        }
        if is_final(line) {
            let _ = self
                .silent
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            self.answered();
        }
        true
    }

    /// A final reply from libunftp was queued for the client (after it, in the client's
    /// outbox, so a reply the relay queues now comes after it).
    pub fn answered(&self) {
        let _ = self
            .owed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        self.changed.notify_waiters();
    }

    /// Nothing is owed: a reply the relay queues now is in the command's order.
    pub fn none(&self) -> bool {
        self.owed.load(Ordering::SeqCst) == 0
    }

    /// Once nothing is owed (the caller bounds the wait).
    pub async fn settled(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.none() {
                return;
            }
            changed.await;
        }
    }

    /// Forget what is owed (libunftp did not answer in time).
    pub fn forget(&self) {
        self.owed.store(0, Ordering::SeqCst);
        self.silent.store(0, Ordering::SeqCst);
        self.changed.notify_waiters();
    }
}

/// Whether a line from libunftp ends its answer to a command (`NNN text` or a bare `NNN`;
/// a preliminary `1NN`, a transfer's `150`, does not: its `226` or error follows).
pub fn is_final(line: &[u8]) -> bool {
    let code = line.len() >= 3 && line[..3].iter().all(u8::is_ascii_digit) && line[0] != b'1';
    code && (line.len() == 3 || line[3] == b' ')
}

/// libunftp's `PWD` reply for `dir` (`257 "dir"`, its words), as the relay gives it before the
/// names' bytes are restored (`crate::names::to_wire`).
pub fn pwd_reply(dir: &Path) -> Vec<u8> {
    format!("257 \"{}\"", dir.display()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_final_lines_answer_and_the_count_never_goes_below_zero() {
        assert!(is_final(b"257 \"/\""));
        assert!(is_final(b"226"));
        assert!(!is_final(b"211-Extensions supported:"));
        assert!(!is_final(b" UTF8"));
        assert!(!is_final(b"25"));
        assert!(!is_final(b"150 Sending data"));
        let owed = Unanswered::default();
        assert!(owed.none());
        owed.forwarded();
        owed.forwarded();
        owed.answered();
        assert!(!owed.none());
        owed.answered();
        owed.answered();
        assert!(owed.none());
        owed.forwarded();
        assert!(!owed.none(), "an extra reply must not hide a later command");
    }

    #[test]
    fn a_silent_commands_reply_is_swallowed_whole_and_answers_it() {
        let owed = Unanswered::default();
        assert!(!owed.swallows(b"250 Okay."), "nothing silent is owed");
        owed.forwarded_silently();
        assert!(!owed.none());
        assert!(owed.swallows(b"250-first line"));
        assert!(!owed.none(), "a reply's first line does not end it");
        assert!(owed.swallows(b"250 Okay."));
        assert!(owed.none());
        owed.forwarded();
        assert!(
            !owed.swallows(b"257 \"/\""),
            "the next reply is the client's"
        );
        owed.forwarded_silently();
        owed.forget();
        assert!(
            !owed.swallows(b"250 Okay."),
            "forget clears the silent ones too"
        );
    }

    #[tokio::test]
    async fn settled_waits_for_the_last_reply() {
        let owed = std::sync::Arc::new(Unanswered::default());
        owed.settled().await;
        owed.forwarded();
        let answering = owed.clone();
        let answer = tokio::spawn(async move {
            tokio::task::yield_now().await;
            answering.answered();
        });
        tokio::time::timeout(std::time::Duration::from_secs(5), owed.settled())
            .await
            .expect("settled once answered");
        answer.await.unwrap();
    }

    #[test]
    fn pwd_is_libunftps_reply() {
        assert_eq!(pwd_reply(Path::new("/a b")), b"257 \"/a b\"".to_vec());
    }
}
