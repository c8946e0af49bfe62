//! The TLS sessions kept for resumption: at most a fixed number, the oldest dropped first,
//! and no memory taken until the first one is stored. (rustls' own memory cache sizes its map
//! and queue for its whole capacity when it is made: about 8 KiB in every session, most of
//! which never resumes anything.)
//!
//! Runs wherever a server configuration is made (the pre-login process, the worker), with
//! their privileges. It must never hand out a session for any key but the one it was stored
//! under.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Sessions by key, oldest first.
#[derive(Debug)]
pub struct SessionCache {
    capacity: usize,
    entries: Mutex<VecDeque<(Vec<u8>, Vec<u8>)>>,
}

impl SessionCache {
    /// An empty cache that keeps at most `capacity` sessions.
    pub fn new(capacity: usize) -> Self {
        SessionCache {
            capacity,
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// Store `value` under `key` (replacing what was there), dropping the oldest session
    /// when full. False when nothing can be kept (a capacity of 0).
    pub fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|(k, _)| *k != key);
        while entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back((key, value));
        true
    }

    /// The session stored under `key`, left in place.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .find(|(k, _)| k.as_slice() == key)
            .map(|(_, v)| v.clone())
    }

    /// Memory set aside for entries (0 until the first `put`).
    #[cfg(test)]
    fn reserved(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_reserved_before_the_first_session() {
        let cache = SessionCache::new(64);
        assert_eq!(cache.reserved(), 0);
        assert_eq!(cache.get(b"k"), None);
        assert_eq!(cache.reserved(), 0);
        assert!(cache.put(b"k".to_vec(), b"v".to_vec()));
        assert!(cache.reserved() > 0);
    }

    #[test]
    fn a_session_is_found_only_under_its_own_key() {
        let cache = SessionCache::new(4);
        cache.put(b"a".to_vec(), b"1".to_vec());
        cache.put(b"b".to_vec(), b"2".to_vec());
        assert_eq!(cache.get(b"a"), Some(b"1".to_vec()));
        assert_eq!(cache.get(b"b"), Some(b"2".to_vec()));
        assert_eq!(cache.get(b"ab"), None);
        assert_eq!(cache.get(b""), None);
        // Looking does not consume.
        assert_eq!(cache.get(b"a"), Some(b"1".to_vec()));
    }

    #[test]
    fn the_oldest_session_goes_first_and_a_key_stored_again_is_replaced() {
        let cache = SessionCache::new(2);
        cache.put(b"a".to_vec(), b"1".to_vec());
        cache.put(b"b".to_vec(), b"2".to_vec());
        cache.put(b"a".to_vec(), b"3".to_vec());
        assert_eq!(cache.get(b"a"), Some(b"3".to_vec()));
        cache.put(b"c".to_vec(), b"4".to_vec());
        assert_eq!(cache.get(b"b"), None, "b was the oldest");
        assert_eq!(cache.get(b"a"), Some(b"3".to_vec()));
        assert_eq!(cache.get(b"c"), Some(b"4".to_vec()));
    }

    #[test]
    fn a_cache_of_no_sessions_keeps_none() {
        let cache = SessionCache::new(0);
        assert!(!cache.put(b"a".to_vec(), b"1".to_vec()));
        assert_eq!(cache.get(b"a"), None);
    }
}
