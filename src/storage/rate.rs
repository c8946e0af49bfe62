//! `local_max_rate` / `anon_max_rate`: the pace of one session's transfers, in bytes per
//! second, as vsftpd means it (per session, uploads and downloads alike).
//!
//! A token bucket in its "theoretical arrival time" form: each chunk moved pushes the time by
//! which the session may have moved it forward by `bytes / rate`; when that time runs more than
//! the burst ahead of the clock, the transfer sleeps (a tokio timer: nothing spins) until it
//! does not. Idle time earns no more than the burst, so a pause cannot be followed by a flood.
//! Runs in the worker, as the user, jailed; it only sleeps — it must never read, write or
//! block the thread.

use std::time::Duration;

use tokio::time::Instant;

/// How far ahead of the clock a session may get: an eighth of a second of its rate.
const BURST: Duration = Duration::from_millis(125);

/// The smallest chunk a limited transfer moves at once (a very low limit still moves whole
/// blocks, only less often).
const MIN_CHUNK: usize = 4096;

/// The pace of one transfer.
#[derive(Debug)]
pub(super) struct Pace {
    bytes_per_second: u64,
    /// When the bytes moved so far are due, at the limit.
    due: Instant,
}

impl Pace {
    /// A pace for `bytes_per_second` (0 = unlimited: `None`).
    pub(super) fn new(bytes_per_second: u32) -> Option<Pace> {
        (bytes_per_second > 0).then(|| Pace {
            bytes_per_second: u64::from(bytes_per_second),
            due: Instant::now(),
        })
    }

    /// The largest chunk to move at once: a burst's worth, so that each sleep is short and
    /// the rate is even.
    pub(super) fn chunk(&self, most: usize) -> usize {
        let burst = self.bytes_per_second * BURST.as_millis() as u64 / 1000;
        usize::try_from(burst)
            .unwrap_or(most)
            .clamp(MIN_CHUNK, most.max(MIN_CHUNK))
    }

    /// `bytes` have just moved: how long to wait before the next chunk.
    fn account(&mut self, bytes: usize, now: Instant) -> Duration {
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64);
        // Time the session did not use earns nothing beyond the burst.
        self.due = self.due.max(now) + cost;
        self.due.saturating_duration_since(now + BURST)
    }

    /// `bytes` have just moved: sleep as long as the limit asks.
    pub(super) async fn moved(&mut self, bytes: usize) {
        let wait = self.account(bytes, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_limit_is_no_pace() {
        assert!(Pace::new(0).is_none());
    }

    #[test]
    fn chunks_are_a_burst_of_the_rate_within_bounds() {
        let p = Pace::new(2_000_000).unwrap();
        assert_eq!(p.chunk(1 << 20), 250_000);
        assert_eq!(Pace::new(10).unwrap().chunk(1 << 20), MIN_CHUNK);
        assert_eq!(Pace::new(u32::MAX).unwrap().chunk(1 << 20), 1 << 20);
    }

    #[test]
    fn the_pace_waits_for_what_runs_ahead_of_the_rate_beyond_the_burst() {
        let start = Instant::now();
        let mut p = Pace {
            bytes_per_second: 1_000_000,
            due: start,
        };
        // A burst's worth goes at once.
        assert_eq!(p.account(125_000, start), Duration::ZERO);
        // One second's worth more at the same instant: wait a second.
        let wait = p.account(1_000_000, start);
        assert_eq!(wait, Duration::from_secs(1));
        // Ten idle seconds later, only a burst is earned back.
        let later = start + Duration::from_secs(11);
        assert_eq!(p.account(125_000, later), Duration::ZERO);
        assert_eq!(p.account(125_000, later), Duration::from_millis(125));
    }
}
