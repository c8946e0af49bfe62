//! `max_per_user`: the master's count of logged-in sessions per login name.
//!
//! A session's monitor claims its login (through the spawner) after PAM accepted it and
//! before the user's worker starts; the master counts the claim here, or refuses it when the
//! name already has `max_per_user` sessions. A claimed session gives its place back when the
//! spawner reports it ended, however it ended (a SIGKILLed session too).
//!
//! Pure bookkeeping, tested as plain data. It never sees a password, and it counts only what
//! the master's own session table says a session claimed: a worker has no way to reach it.

use std::collections::HashMap;

/// Logged-in sessions per login name.
#[derive(Debug, Default)]
pub struct UserSessions {
    counts: HashMap<String, u32>,
}

impl UserSessions {
    /// Count one more session of `user`, unless `limit` (0 = unlimited) is reached.
    pub fn claim(&mut self, user: &str, limit: u32) -> bool {
        let here = self.counts.get(user).copied().unwrap_or(0);
        if limit > 0 && here >= limit {
            return false;
        }
        self.counts.insert(user.to_owned(), here + 1);
        true
    }

    /// A session counted by [`UserSessions::claim`] has ended.
    pub fn release(&mut self, user: &str) {
        if let Some(n) = self.counts.get_mut(user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.counts.remove(user);
            }
        }
    }

    #[cfg(test)]
    fn of(&self, user: &str) -> u32 {
        self.counts.get(user).copied().unwrap_or(0)
    }
}

impl super::State {
    /// Session `id` claims a login for `user`: counted and `true`, or `false` when
    /// `max_per_user` is reached (the monitor then answers `421` and ends the session).
    pub(super) fn claim(&self, id: u64, user: &str, generation: u64) -> bool {
        let limit = self.prepared().limits.max_per_user;
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        // A spawner claims only for the sessions it started.
        let Some(session) = sessions.get_mut(&id).filter(|s| s.generation == generation) else {
            tracing::warn!(id, "a login claim for an unknown session; refused");
            return false;
        };
        // SECURITY: one claim per session; a second one (a confused or compromised spawner
        // side) is refused rather than moving the count.
        if session.user.is_some() {
            tracing::warn!(id, "a second login claim for one session; refused");
            return false;
        }
        let granted = self
            .user_sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .claim(user, limit);
        if granted {
            session.user = Some(user.to_owned());
        } else {
            // The session's monitor logs the refusal ("session refused") with its pid.
            tracing::debug!(client = %session.peer.ip(), port = session.peer.port(),
                user = %crate::logging::Escaped(user), max_per_user = limit,
                "max_per_user reached");
        }
        granted
    }

    /// A session has ended: its claimed login, if any, no longer counts.
    pub(super) fn release_login(&self, session: &super::Session) {
        if let Some(user) = &session.user {
            self.user_sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .release(user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_exact_per_name_and_recovers_when_sessions_end() {
        let mut s = UserSessions::default();
        assert!(s.claim("alice", 2));
        assert!(s.claim("alice", 2));
        assert!(!s.claim("alice", 2));
        assert!(s.claim("bob", 2));
        s.release("alice");
        assert_eq!(s.of("alice"), 1);
        assert!(s.claim("alice", 2));
        assert!(!s.claim("alice", 2));
        s.release("alice");
        s.release("alice");
        assert!(!s.counts.contains_key("alice"));
        // 0 = unlimited; releasing an unknown name changes nothing.
        for _ in 0..100 {
            assert!(s.claim("carol", 0));
        }
        s.release("nobody");
        assert_eq!(s.of("carol"), 100);
    }
}
