//! Connection admission in the master, decided before any process is spawned: `max_clients`,
//! `max_per_ip`, and the ban of addresses that failed to log in too often.
//!
//! Pure bookkeeping — no I/O, no clock of its own (callers pass `Instant`s) — so it is tested
//! as plain data. It never sees a user name or password, only addresses and counts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::Config;

/// The refusal the master writes before closing, in vsftpd's words where vsftpd has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TooManyClients,
    TooManyFromAddress,
    Banned,
}

impl Refusal {
    pub fn reply(self) -> &'static str {
        match self {
            Refusal::TooManyClients => {
                "421 There are too many connected users, please try later.\r\n"
            }
            Refusal::TooManyFromAddress => {
                "421 There are too many connections from your internet address.\r\n"
            }
            Refusal::Banned => {
                "421 Too many failed logins from your internet address, please try later.\r\n"
            }
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Refusal::TooManyClients => "max_clients reached",
            Refusal::TooManyFromAddress => "max_per_ip reached",
            Refusal::Banned => "address banned after failed logins",
        }
    }
}

/// The limits in force (from the config; replaced on reload).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_clients: u32,
    pub max_per_ip: u32,
    /// Counted at login, by `super::user_sessions`.
    pub max_per_user: u32,
    pub ban_failed_logins: u32,
    pub ban_window: Duration,
    pub ban_time: Duration,
}

impl Limits {
    pub fn from_config(c: &Config) -> Limits {
        Limits {
            max_clients: c.max_clients,
            max_per_ip: c.max_per_ip,
            max_per_user: c.max_per_user,
            ban_failed_logins: c.ban_failed_logins,
            ban_window: Duration::from_secs(c.ban_window),
            ban_time: Duration::from_secs(c.ban_time),
        }
    }
}

#[derive(Debug, Default)]
struct Failures {
    recent: Vec<Instant>,
    banned_until: Option<Instant>,
}

/// Live sessions and recent failures.
#[derive(Debug, Default)]
pub struct Admission {
    total: u32,
    per_ip: HashMap<IpAddr, u32>,
    failures: HashMap<IpAddr, Failures>,
}

impl Admission {
    /// Admit a new connection (counting it) or say why not.
    pub fn admit(&mut self, ip: IpAddr, limits: &Limits, now: Instant) -> Result<(), Refusal> {
        if let Some(f) = self.failures.get(&ip)
            && f.banned_until.is_some_and(|until| now < until)
        {
            return Err(Refusal::Banned);
        }
        if limits.max_clients > 0 && self.total >= limits.max_clients {
            return Err(Refusal::TooManyClients);
        }
        let here = self.per_ip.get(&ip).copied().unwrap_or(0);
        if limits.max_per_ip > 0 && here >= limits.max_per_ip {
            return Err(Refusal::TooManyFromAddress);
        }
        self.total += 1;
        self.per_ip.insert(ip, here + 1);
        Ok(())
    }

    /// A session admitted earlier has ended (however it ended), with `failed_logins` failures.
    /// Returns true when this ends with the address being banned.
    pub fn ended(&mut self, ip: IpAddr, failed_logins: u32, limits: &Limits, now: Instant) -> bool {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
        if failed_logins == 0 || limits.ban_failed_logins == 0 {
            return false;
        }
        let entry = self.failures.entry(ip).or_default();
        entry
            .recent
            .retain(|t| now.duration_since(*t) < limits.ban_window);
        entry
            .recent
            .extend(std::iter::repeat_n(now, failed_logins as usize));
        if entry.recent.len() >= limits.ban_failed_logins as usize {
            entry.banned_until = Some(now + limits.ban_time);
            entry.recent.clear();
            return true;
        }
        false
    }

    /// Forget expired failures and bans (call now and then so the map cannot grow forever).
    pub fn sweep(&mut self, limits: &Limits, now: Instant) {
        self.failures.retain(|_, f| {
            f.recent
                .retain(|t| now.duration_since(*t) < limits.ban_window);
            let banned = f.banned_until.is_some_and(|until| now < until);
            banned || !f.recent.is_empty()
        });
    }

    #[cfg(test)]
    fn live_sessions(&self) -> u32 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_clients: u32, max_per_ip: u32, ban: u32) -> Limits {
        Limits {
            max_clients,
            max_per_ip,
            max_per_user: 0,
            ban_failed_logins: ban,
            ban_window: Duration::from_secs(60),
            ban_time: Duration::from_secs(600),
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn max_clients_counts_every_address_and_recovers_when_sessions_end() {
        let (l, now, mut a) = (limits(2, 0, 0), Instant::now(), Admission::default());
        assert_eq!(a.admit(A, &l, now), Ok(()));
        assert_eq!(a.admit(B, &l, now), Ok(()));
        assert_eq!(a.admit(B, &l, now), Err(Refusal::TooManyClients));
        a.ended(A, 0, &l, now);
        assert_eq!(a.admit(B, &l, now), Ok(()));
        assert_eq!(a.live_sessions(), 2);
    }

    #[test]
    fn max_per_ip_is_exact_and_per_address() {
        let (l, now, mut a) = (limits(0, 2, 0), Instant::now(), Admission::default());
        assert!(a.admit(A, &l, now).is_ok());
        assert!(a.admit(A, &l, now).is_ok());
        assert_eq!(a.admit(A, &l, now), Err(Refusal::TooManyFromAddress));
        assert!(a.admit(B, &l, now).is_ok());
        a.ended(A, 0, &l, now);
        assert!(a.admit(A, &l, now).is_ok());
    }

    #[test]
    fn failures_within_the_window_ban_the_address_only() {
        let (l, now, mut a) = (limits(0, 0, 3), Instant::now(), Admission::default());
        a.admit(A, &l, now).unwrap();
        assert!(!a.ended(A, 2, &l, now));
        a.admit(A, &l, now).unwrap();
        assert!(a.ended(A, 1, &l, now));
        assert_eq!(a.admit(A, &l, now), Err(Refusal::Banned));
        assert!(a.admit(B, &l, now).is_ok());
        // The ban expires.
        assert!(a.admit(A, &l, now + Duration::from_secs(601)).is_ok());
    }

    #[test]
    fn old_failures_fall_out_of_the_window() {
        let (l, now, mut a) = (limits(0, 0, 3), Instant::now(), Admission::default());
        a.admit(A, &l, now).unwrap();
        a.ended(A, 2, &l, now);
        let later = now + Duration::from_secs(61);
        a.admit(A, &l, later).unwrap();
        assert!(!a.ended(A, 1, &l, later));
        a.sweep(&l, later + Duration::from_secs(61));
        assert!(a.failures.is_empty());
    }
}
